// Grade a local server with the MDN HTTP Observatory's own scan() and print the result as
// JSON. scan(hostname) always retrieves http://HOST/ and https://HOST/ on ports 80/443;
// observatory-hooks.mjs swaps its retriever for observatory-retriever.mjs, which calls
// the real retriever with the test server's ports. Grading is the package's, unchanged.
// Usage: OBSERVATORY_HTTP_PORT=.. OBSERVATORY_HTTPS_PORT=.. NODE_EXTRA_CA_CERTS=ca.pem \
//        node observatory.mjs HOSTNAME
import { register } from "node:module";

register("./observatory-hooks.mjs", import.meta.url);
const { scan } = await import("@mdn/mdn-http-observatory");

const result = await scan(process.argv[2] ?? "localhost");
const tests = Object.fromEntries(
  Object.values(result.tests).map((t) => [
    t.constructor.name,
    { pass: t.pass, result: t.result, scoreModifier: t.scoreModifier },
  ]),
);
process.stdout.write(JSON.stringify({ ...result.scan, tests }, null, 2) + "\n");
