// The Device Issuance wizard in a real browser: headless Chromium driven by playwright-core.
// Starts `tessera demo` on a free loopback port with a fresh data folder, signs in with the
// one-time admin password it prints, issues a card to Jane Doe with Continue (Active) and another
// with Cancel (Pending), and keeps a screenshot of every wizard step in tests/e2e/artifacts/.
import { launchChromium, startDemo } from "./demo.mjs";
import { mkdirSync, copyFileSync } from "node:fs";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const artifacts = path.join(here, "artifacts");
mkdirSync(artifacts, { recursive: true });
const demo = startDemo("data");
const { base, stop } = demo;
const PIN = "482916";


let shot = 0;
async function snap(page, name) {
  shot += 1;
  const file = path.join(artifacts, `${String(shot).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true, timeout: 10000 });
  return file;
}

async function run() {
  const password = await demo.ready();

  const browser = await launchChromium();
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  // A Content-Security-Policy violation or a failed load is a defect of the page.
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });

  await page.goto(`${base}/users/jdoe`);
  assert.match(page.url(), /\/login$/, "the portal asks to sign in first");
  await page.fill("input[name=operator]", "admin");
  await page.fill("input[name=password]", password);
  await snap(page, "sign-in");
  await page.click("button[type=submit]");
  await page.waitForURL(/\/users$/);

  await page.fill("input[name=q]", "Jane");
  await page.click("form.search button");
  await page.click("text=Jane Doe");
  await page.waitForURL(/\/users\/jdoe$/);
  await snap(page, "user-page");

  // --- first card: Continue
  await page.click("#add-device");
  await page.waitForSelector("#printer-tile");
  await snap(page, "configure-device");
  await page.selectOption("#printer", "Demo Card Printer");
  assert.equal(await page.inputValue("#reader"), "Demo Card Printer Encoder", "the printer proposes its encoder");
  await page.click("#configure");
  await page.waitForSelector("#change-reader");
  await page.selectOption("#layout", { label: "Corporate Badge" });
  const configured = await snap(page, "printer-configured");
  await page.click("#start");
  await page.waitForSelector("#policy");
  await page.selectOption("#policy", { label: "PIV Standard" });
  await page.fill("#pin", PIN);
  await page.fill("#pin-confirm", PIN);
  await snap(page, "policy-and-pin");
  await page.click("#continue");
  await page.waitForSelector("#progress, #print-info", { timeout: 60000 });
  if (await page.$("#progress")) {
    const value = await page.$eval("#progress", (p) => p.value);
    assert.ok(value < 100, "the progress bar starts below 100%");
    // The page reloads itself when the card is done, possibly during this screenshot.
    await snap(page, "issue-device-progress").catch(() => {});
  }
  await page.waitForSelector("#print-info", { timeout: 120000 });
  await page.waitForFunction(() => {
    const img = document.querySelector("#preview-front");
    return img && img.complete && img.naturalWidth > 0;
  });
  const printStep = await snap(page, "print-device");
  assert.ok(!(await page.content()).includes(PIN), "the PIN is never shown after it was entered");
  await page.click("#continue");
  await page.waitForURL(/\/users\/jdoe/);
  await page.waitForSelector(".device .state-active");
  const certRows = await page.$$eval(".device[data-state=active] table.certs tbody tr", (r) => r.length);
  assert.equal(certRows, 4, "four certificates are listed");
  const active = await snap(page, "user-page-active");

  // --- second card: the pairing is remembered; Cancel leaves it Pending
  await page.click("#add-device");
  await page.waitForSelector("#change-reader");
  await page.click("#start");
  await page.waitForSelector("#policy");
  await page.selectOption("#policy", { label: "PIV Standard" });
  await page.fill("#pin", PIN);
  await page.fill("#pin-confirm", PIN);
  await page.click("#continue");
  await page.waitForSelector("#print-info", { timeout: 120000 });
  await page.click("#cancel");
  await page.waitForURL(/\/users\/jdoe/);
  await page.waitForSelector(".device .state-pending");
  await snap(page, "user-page-pending");

  assert.deepEqual(errors, [], "no script errors, CSP violations or failed loads");
  await browser.close();

  if (process.env.TESSERA_DOCS_SCREENSHOTS) {
    const docs = path.join(here, "../../docs/images");
    mkdirSync(docs, { recursive: true });
    copyFileSync(configured, path.join(docs, "wizard-configure.png"));
    copyFileSync(printStep, path.join(docs, "wizard-print.png"));
    copyFileSync(active, path.join(docs, "user-page-active.png"));
  }
  console.log(`browser issuance: Continue -> Active, Cancel -> Pending; ${shot} screenshots in ${artifacts}`);
}

run().then(() => { stop(); process.exit(0); }, (e) => {
  console.error(e);
  console.error(demo.log);
  stop();
  process.exit(1);
});
