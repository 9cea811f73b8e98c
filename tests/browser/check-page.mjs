// Load one URL in headless Chromium and report, as JSON on stdout, every CSP violation
// (securitypolicyviolation events and Chromium's console CSP messages), page errors,
// failed requests, the document's response headers and what React rendered.
// Usage: node check-page.mjs URL CHROMIUM_PATH USER_DATA_DIR
import { chromium } from "playwright-core";

const [url, executablePath, userDataDir] = process.argv.slice(2);
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const report = {
  violations: [],
  consoleCspViolations: [],
  consoleCspWarnings: [],
  consoleErrors: [],
  pageErrors: [],
  failedRequests: [],
  badResponses: [],
  documentHeaders: {},
  isSecureContext: null,
  heading: null,
  counterAfterClick: null,
  requests: [],
};
try {
  const page = context.pages()[0] ?? (await context.newPage());
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__cspViolations.push({
        directive: e.effectiveDirective,
        blockedURI: e.blockedURI,
        disposition: e.disposition,
        sourceFile: e.sourceFile,
        sample: e.sample,
      });
    });
  });
  page.on("console", (msg) => {
    const text = msg.text();
    if (/Refused to|violates the following/i.test(text)) report.consoleCspViolations.push(text);
    else if (/Content Security Policy/i.test(text)) report.consoleCspWarnings.push(text);
    else if (msg.type() === "error") report.consoleErrors.push(text);
  });
  page.on("pageerror", (err) => report.pageErrors.push(String(err)));
  page.on("requestfailed", (req) =>
    report.failedRequests.push(`${req.url()} ${req.failure()?.errorText}`),
  );
  page.on("response", (res) => {
    report.requests.push(`${res.status()} ${res.url()}`);
    if (res.status() >= 400) report.badResponses.push(`${res.status()} ${res.url()}`);
  });

  const response = await page.goto(url, { waitUntil: "networkidle" });
  report.documentHeaders = response ? await response.allHeaders() : {};
  report.heading = await page.locator("h1").first().textContent({ timeout: 10000 });
  await page.getByRole("button", { name: /Count is/ }).click();
  report.counterAfterClick = await page.getByRole("button", { name: /Count is/ }).textContent();
  await page.waitForLoadState("networkidle");
  report.isSecureContext = await page.evaluate(() => window.isSecureContext);
  report.violations = await page.evaluate(() => window.__cspViolations);
} catch (error) {
  report.pageErrors.push(`check-page.mjs: ${error}`);
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(report, null, 2) + "\n");
