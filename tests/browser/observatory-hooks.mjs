// Module hook: the scanner's import of its retriever resolves to our port-aware wrapper.
export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  if (
    resolved.url.endsWith("/@mdn/mdn-http-observatory/src/retriever/retriever.js") &&
    context.parentURL?.endsWith("/@mdn/mdn-http-observatory/src/scanner/index.js")
  ) {
    return { url: new URL("./observatory-retriever.mjs", import.meta.url).href, shortCircuit: true };
  }
  return resolved;
}
