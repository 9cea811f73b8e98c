// The Observatory's real retriever, told which local ports to use.
import { retrieve as realRetrieve } from "@mdn/mdn-http-observatory/src/retriever/retriever.js";

export async function retrieve(hostname, options = {}) {
  return realRetrieve(hostname, {
    ...options,
    httpPort: process.env.OBSERVATORY_HTTP_PORT,
    httpsPort: process.env.OBSERVATORY_HTTPS_PORT,
  });
}
