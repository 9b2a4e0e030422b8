// Overlapping and abandoned issuances as an operator makes them, in a real browser (headless
// Chromium driven by playwright-core) against `tessera demo`:
// - two tabs on the same person both click Start: the second is refused (JOB0002) and offered the
//   first issuance, with Resume and Cancel it; Resume opens it;
// - Back from the policy step: the configure page is fetched again (the wizard's pages are never
//   cached) and offers the issuance in progress instead of a second Start; Cancel it, with a
//   reason, ejects the fed card, and only then can a new issuance start;
// - Back after Continue: the issuance's page shows it completed, without Cancel or Continue.
// Each time the database is asked too: one issuance in progress at most, on the Jobs page.
import { launchChromium, startDemo } from "./demo.mjs";
import { mkdirSync } from "node:fs";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const artifacts = path.join(here, "artifacts");
mkdirSync(artifacts, { recursive: true });
const demo = startDemo("data-overlap");
const { base, stop } = demo;
const GOOD = "482916";


const text = (page, sel) => page.$eval(sel, (e) => e.textContent.replace(/\s+/g, " ").trim());
const jobOf = (url) => /\/issue\/([^/?#]+)/.exec(url)[1];

/** Add Device for jdoe up to the Start button (printer configured, layout chosen). */
async function configure(page) {
  await page.goto(`${base}/users/jdoe`);
  await page.click("#add-device");
  await page.waitForSelector("#printer-tile");
  if (!(await page.$("#change-reader"))) {
    await page.selectOption("#printer", "Demo Card Printer");
    await page.click("#configure");
    await page.waitForSelector("#change-reader");
  }
  await page.selectOption("#layout", { label: "Corporate Badge" });
}

/** The issuances in progress the Jobs page lists (their ids). */
async function jobsInProgress(page) {
  await page.goto(`${base}/jobs`);
  return page.$$eval("[data-job]", (tiles) => tiles.map((t) => t.dataset.job));
}

async function run() {
  const password = await demo.ready();
  const browser = await launchChromium();
  // One browser, one session, two tabs: as an operator who opened the person twice.
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  const watch = (page) => {
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error" && !/status of 4\d\d/.test(m.text())) errors.push(m.text());
    });
  };
  const tab1 = await context.newPage();
  watch(tab1);
  await tab1.goto(`${base}/login`);
  await tab1.fill("input[name=operator]", "admin");
  await tab1.fill("input[name=password]", password);
  await tab1.click("button[type=submit]");
  await tab1.waitForURL(/\/users$/);
  const tab2 = await context.newPage();
  watch(tab2);

  // --- Two tabs, both at Start.
  await configure(tab1);
  await configure(tab2);
  await tab1.click("#start");
  await tab1.waitForSelector("#policy");
  const first = jobOf(tab1.url());
  const [refusal] = await Promise.all([tab2.waitForNavigation(), tab2.click("#start")]);
  assert.equal(refusal.status(), 409, "the second Start is refused");
  assert.match(await text(tab2, "#in-progress-refusal"), /JOB0002/);
  assert.match(await text(tab2, "#in-progress-refusal"), /already has an issuance in progress/);
  assert.equal(await tab2.getAttribute(".in-progress", "data-job"), first, "it names the first issuance");
  assert.match(await text(tab2, ".in-progress-step"), /Configure Device|Started/i);
  assert.deepEqual(await jobsInProgress(tab2), [first], "one issuance in progress, not two");
  await tab2.click(".in-progress .resume");
  await tab2.waitForSelector("#policy");
  assert.equal(jobOf(tab2.url()), first, "Resume opens the issuance in progress");
  await tab2.close();

  // --- Back from the policy step, then Start again.
  await tab1.goBack();
  await tab1.waitForSelector("#one-at-a-time");
  assert.equal(await tab1.$("#start"), null, "no second Start while one is in progress");
  assert.equal(await tab1.getAttribute(".in-progress", "data-job"), first);
  assert.match(await text(tab1, ".in-progress-card"), /\S/, "the fed card is named");
  await tab1.fill(".in-progress .cancel-reason", "wrong layout chosen");
  await Promise.all([tab1.waitForNavigation(), tab1.click(".in-progress .cancel-job")]);
  assert.deepEqual(await jobsInProgress(tab1), [], "cancelled: nothing in progress");
  await tab1.goto(`${base}/audit`);
  assert.match(await tab1.content(), /wrong layout chosen/, "the reason is in the audit log");
  assert.match(await tab1.content(), /CardEjected/, "the card left the printer");
  await configure(tab1);
  await tab1.click("#start");
  await tab1.waitForSelector("#policy");
  const second = jobOf(tab1.url());
  assert.notEqual(second, first, "a new issuance once the first is cancelled");

  // --- Back after Continue.
  await tab1.selectOption("#policy", "piv-standard");
  await tab1.fill("#pin", GOOD);
  if (await tab1.$("#pin-confirm")) await tab1.fill("#pin-confirm", GOOD);
  await tab1.click("#continue");
  await tab1.waitForSelector("#print-info", { timeout: 120000 });
  await tab1.click("#continue");
  await tab1.waitForURL(/\/users\/jdoe/);
  await tab1.waitForSelector(".device .state-active");
  await tab1.goBack();
  await tab1.waitForLoadState();
  assert.ok(tab1.url().endsWith(`/issue/${second}`), tab1.url());
  assert.match(await text(tab1, "h2"), /Done/, "the page shows the issuance as it is now");
  for (const button of ["#continue", "#cancel", "#continue-bottom", "#cancel-bottom", "#retry-print"]) {
    assert.equal(await tab1.$(button), null, `no live ${button} for a finished step`);
  }
  // A decision sent for it anyway (a form kept open elsewhere) is refused, nothing changes.
  const token = await tab1.$eval("input[name=csrf]", (e) => e.value);
  const late = await tab1.evaluate(async ([job, csrf]) => {
    const r = await fetch(`/issue/${job}/cancel`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ csrf }),
    });
    return { status: r.status, body: await r.text() };
  }, [second, token]);
  assert.equal(late.status, 409, "a decision on a finished issuance is refused");
  assert.match(late.body, /JOB0004/);
  assert.match(late.body, /already completed/);
  await tab1.goto(`${base}/users/jdoe`);
  assert.ok(await tab1.$(".device .state-active"), "the card stays Active");

  assert.deepEqual(errors, [], "no script errors or CSP violations");
  await browser.close();
  console.log("browser overlap: two tabs, Back then Start, Back after Continue: one issuance at a time, none left behind");
}

run().then(() => { stop(); process.exit(0); }, (e) => {
  console.error(e);
  console.error(demo.log);
  stop();
  process.exit(1);
});
