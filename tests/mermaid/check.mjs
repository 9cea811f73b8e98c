// Parses Mermaid diagrams with Mermaid's own parser (the one GitHub runs in the browser).
// Input on stdin: one JSON object per line, {"name": "diagram text", ...}. Output on stdout: one
// line of JSON per input line, {"name": {"type", "vertices": {id: label},
// "edges": [{start, end, text, stroke}], "subgraphs": [{id, title, nodes}]}} or
// {"name": {"error": "..."}}. One process serves every request (Mermaid takes seconds to load).
// Mermaid needs a DOM for its label sanitizer (DOMPurify), so jsdom provides one; nothing is
// drawn (jsdom has no layout), only parsed into Mermaid's flowchart database.
import { JSDOM } from 'jsdom';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' });

import { createInterface } from 'node:readline';

async function parseAll(diagrams) {
  const result = {};
  for (const [name, text] of Object.entries(diagrams)) {
    try {
      await mermaid.parse(text);  // throws on a syntax error
      const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
      const db = diagram.db;
      result[name] = {
        type: diagram.type,
        vertices: Object.fromEntries([...db.getVertices().entries()].map(([id, v]) => [id, v.text])),
        edges: db.getEdges().map((e) => ({ start: e.start, end: e.end, text: e.text, stroke: e.stroke })),
        subgraphs: db.getSubGraphs().map((s) => ({ id: s.id, title: s.title, nodes: s.nodes })),
      };
    } catch (error) {
      result[name] = { error: String(error && error.message ? error.message : error) };
    }
  }
  return result;
}

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim()) process.stdout.write(JSON.stringify(await parseAll(JSON.parse(line))) + '\n');
}
