// Accessibility and small screens, over every portal page, in a real browser (headless Chromium,
// playwright-core). Starts `tessera demo` on a free loopback port with a fresh data folder, signs in
// as the administrator, drives one Device Issuance (so the wizard's three steps, a card and its
// device pages exist), does an import dry run, then visits every GET page of the portal: the routes
// are read from crates/server/src/portal/mod.rs, and a page reached by no link is a failure, so a
// new page cannot escape the check. On each page:
//   - axe-core (injected; the context bypasses our CSP for that script only) at 1280 px and at
//     390 px: any violation of impact serious or critical fails the test, all of them printed;
//   - at 390 px, and at 640 px (a 1280 px window at 200 % zoom), the page is no wider than the
//     window (document.documentElement.scrollWidth);
//   - the first focusable element is the "Skip to content" link, and its target exists;
//   - the title is the page's own (no two pages share one).
// The wizard's steps also mark the current step with aria-current="step", put focus on the step's
// first field or heading, and announce progress in a live region. Every page at 390 px is kept in
// tests/e2e/artifacts/a11y-page-NN-*.png; the three steps also go, with TESSERA_DOCS_SCREENSHOTS=1,
// to docs/images/wizard-mobile-*.png.
import { launchChromium, startDemo } from "./demo.mjs";
import { mkdirSync, copyFileSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { setTimeout as sleep } from "node:timers/promises";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const axePath = require.resolve("axe-core/axe.min.js");
const artifacts = path.join(here, "artifacts");
mkdirSync(artifacts, { recursive: true });
const demo = startDemo("data-a11y");
const { base, stop } = demo;
const PIN = "482916";
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };
const ZOOMED = { width: 640, height: 450 }; // a 1280 x 900 window at 200 % zoom

// GET routes that answer something other than a page (images, JSON, redirects) or that only a
// card in a browser's certificate store reaches.
const NOT_PAGES = new Set([
  "/", // redirects to /users
  "/login/card", // TLS client certificate sign-in
  "/account/next", // redirects to where the operator goes next
  "/users/{uid}/photo", // an image
  "/users/import/{id}/progress", // the import's progress, as JSON
  "/devices/{id}/preview/{side}", // an image
]);

// The portal's GET routes, from the router itself: `.route("/path", get(...))`.
const routeSource = readFileSync(path.join(here, "../../crates/server/src/portal/mod.rs"), "utf8");
const routes = [...routeSource.matchAll(/\.route\(\s*"([^"]+)",\s*get\(/g)].map((m) => m[1])
  .filter((r) => !NOT_PAGES.has(r))
  .map((pattern) => ({
    pattern,
    params: (pattern.match(/\{/g) ?? []).length,
    re: new RegExp(`^${pattern.replace(/\{[^}]+\}/g, "[^/]+")}$`),
  }))
  // A literal route wins over a parameter, as in axum: /users/new is not /users/{uid}.
  .sort((a, b) => a.params - b.params);
assert.ok(routes.length > 20, "the portal's routes were read from portal/mod.rs");
const routeOf = (pathname) => routes.find((r) => r.re.test(pathname))?.pattern;


const failures = [];
const titles = new Map(); // title -> the page that has it
const visited = new Set(); // route patterns checked
const shots = {};
let pageShots = 0;

// Runs axe-core on the page as it is and returns its serious and critical violations.
async function axe(page) {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) {
    await page.addScriptTag({ path: axePath });
  }
  const result = await page.evaluate(() => window.axe.run(document, {
    resultTypes: ["violations"],
  }));
  return result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
}

function report(label, width, violations) {
  for (const v of violations) {
    const nodes = v.nodes.map((n) => `      ${n.target.join(" ")}: ${n.failureSummary.replace(/\n/g, " ")}`).join("\n");
    failures.push(`${label} at ${width} px: [${v.impact}] ${v.id}: ${v.help}\n${nodes}`);
  }
}

// Every check that holds on every page. `shot` names a 390 px screenshot to keep; pages of one
// `group` (the forms of one wizard step) may share a title; `route: false` for a page that stands
// for no route of its own (the error page).
async function check(page, label, { shot, group = label, route: counts = true } = {}) {
  await page.waitForLoadState("load");
  const url = new URL(page.url());
  const route = routeOf(url.pathname);
  if (route && counts) visited.add(route);
  const where = `${label} (${url.pathname})`;

  const title = await page.title();
  if (!/ · Tessera$/.test(title)) failures.push(`${where}: the title "${title}" does not end in " · Tessera"`);
  if (titles.has(title) && titles.get(title) !== group) {
    failures.push(`${where}: the title "${title}" is also the title of ${titles.get(title)}`);
  }
  titles.set(title, group);

  const skip = await page.evaluate(() => {
    const first = document.querySelector(
      "a[href], button, input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex='-1'])");
    const target = first?.getAttribute("href")?.startsWith("#")
      ? document.getElementById(first.getAttribute("href").slice(1)) : null;
    return { text: first?.textContent.trim(), target: !!target };
  });
  if (skip.text !== "Skip to content" || !skip.target) {
    failures.push(`${where}: the first focusable element is "${skip.text}", not a working "Skip to content" link`);
  }
  const viewport = await page.evaluate(() =>
    document.querySelector("meta[name=viewport]")?.getAttribute("content") ?? "");
  if (!viewport.includes("width=device-width")) failures.push(`${where}: no viewport meta`);

  report(where, DESKTOP.width, await axe(page));

  for (const size of [ZOOMED, PHONE]) {
    await page.setViewportSize(size);
    await sleep(50); // a resize handler (wide tables become focusable) runs
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    if (width > size.width) {
      // The outermost elements that stick out, to name in the failure.
      const wide = await page.evaluate((max) => [...document.querySelectorAll("body *")]
        .filter((e) => e.getBoundingClientRect().right > max + 1)
        .filter((e) => !e.parentElement || e.parentElement.getBoundingClientRect().right <= max + 1)
        .slice(0, 5).map((e) => `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ""}${e.className ? `.${String(e.className).split(" ").join(".")}` : ""}`),
      size.width);
      failures.push(`${where}: ${width} px wide at ${size.width} px (too wide: ${wide.join(", ")})`);
    }
  }
  report(where, PHONE.width, await axe(page));
  pageShots += 1;
  const slug = label.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, "").toLowerCase();
  await page.screenshot({
    path: path.join(artifacts, `a11y-page-${String(pageShots).padStart(2, "0")}-${slug}.png`), timeout: 10000,
  });
  if (shot) {
    const file = path.join(artifacts, `a11y-${shot}.png`);
    await page.screenshot({ path: file, timeout: 10000 });
    shots[shot] = file;
  }
  await page.setViewportSize(DESKTOP);
}

// The wizard's own promises, on one of its steps.
async function checkStep(page, name) {
  const steps = await page.$$eval("ol.steps li[aria-current=step]", (li) => li.map((l) => l.textContent.trim()));
  assert.equal(steps.length, 1, `${name}: one step is marked aria-current="step"`);
  assert.ok(steps[0].startsWith(name), `${name}: the current step is ${steps[0]}`);
  assert.match(await page.title(), new RegExp(`^${name} · Jane Doe · Tessera$`), `${name}: the step's title`);
  const focused = await page.evaluate(() => {
    const e = document.activeElement;
    return e && e !== document.body ? `${e.tagName.toLowerCase()}#${e.id}` : null;
  });
  assert.ok(focused, `${name}: the step's first field or heading has focus`);
  return focused;
}

async function run() {
  const password = await demo.ready();

  const browser = await launchChromium();
  // The portal's CSP allows no script but its own; axe-core is injected, so this context bypasses
  // the CSP (the other browser tests run with it and fail on any violation).
  const context = await browser.newContext({ viewport: DESKTOP, bypassCSP: true });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));

  // --- before signing in: the sign-in page and an error page
  await page.goto(`${base}/login`);
  await check(page, "Sign in");
  assert.equal(await page.evaluate(() => document.activeElement?.name), "operator", "the operator field has focus");
  await page.fill("input[name=operator]", "admin");
  await page.fill("input[name=password]", password);
  await page.click("main button[type=submit]");
  await page.waitForURL(/\/users$/);

  // The keyboard: the first Tab shows the skip link, Enter moves on to the page's content.
  await page.keyboard.press("Tab");
  const skip = await page.evaluate(() => {
    const e = document.activeElement;
    const r = e.getBoundingClientRect();
    return { text: e.textContent.trim(), visible: r.top >= 0 && r.bottom <= innerHeight && r.width > 0 };
  });
  assert.deepEqual(skip, { text: "Skip to content", visible: true }, "the first Tab shows the skip link");
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "content", "the skip link moves focus to the content");

  const missing = await page.goto(`${base}/users/no-such-person-a11y`);
  assert.ok(missing.status() >= 400, "an unknown person is an error");
  assert.match(await page.title(), /^Error /, "the error page");
  await check(page, "Error page", { route: false });

  // --- the wizard, step by step, on Jane Doe
  await page.goto(`${base}/users/jdoe`);
  await page.click("#add-device");
  await page.waitForSelector("#start-form");
  await checkStep(page, "Configure Device");
  await check(page, "Configure Device", { group: "Configure Device" });
  if (await page.$("#printer")) {
    await page.selectOption("#printer", "Demo Card Printer");
    await page.click("#configure");
    await page.waitForSelector("#change-reader");
  }
  await page.selectOption("#layout", { label: "Corporate Badge" });
  assert.match(await checkStep(page, "Configure Device"), /^(select|input|textarea)/, "the configured step starts on a field");
  await check(page, "Configure Device, printer configured", { shot: "configure", group: "Configure Device" });

  await page.click("#start");
  await page.waitForSelector("#policy");
  await checkStep(page, "Configure Device");
  await check(page, "Configure Device, policy and PIN", { group: "Configure Device" });
  await page.selectOption("#policy", { label: "PIV Standard" });
  if (await page.$("#pin")) await page.fill("#pin", PIN);
  if (await page.$("#pin-confirm")) await page.fill("#pin-confirm", PIN);

  // The Issue Device step reloads itself when the card is done. Its status requests are held while
  // it is checked, so that the page stays still; released, the page goes on to Print Device.
  const held = [];
  await page.route("**/api/v1/jobs/**", (route) => { held.push(route); });
  await page.click("#continue");
  await page.waitForSelector("#progress, #print-info", { timeout: 60000 });
  if (await page.$("#progress")) {
    const step = await page.$eval("ol.steps li[aria-current=step]", (li) => li.textContent.trim());
    await checkStep(page, step);
    assert.equal(await page.$eval("#progress-message", (e) => e.getAttribute("role")), "status",
      "the progress message is a live region");
    assert.equal(await page.$eval("#progress", (e) => e.tagName), "PROGRESS", "the bar is a <progress>");
    await check(page, `${step}, progress`, { shot: step === "Issue Device" ? "issue" : undefined, group: step });
  } else {
    failures.push("the Issue Device step was never seen: the card was done before the page loaded");
  }
  await page.unroute("**/api/v1/jobs/**");
  for (const route of held) await route.continue().catch(() => {});
  await page.waitForSelector("#print-info", { timeout: 120000 });
  await page.waitForFunction(() => {
    const img = document.querySelector("#preview-front");
    return img && img.complete && img.naturalWidth > 0;
  });
  await checkStep(page, "Print Device");
  await check(page, "Print Device", { shot: "print", group: "Print Device" });
  await page.click("#continue");
  await page.waitForURL(/\/users\/jdoe/);
  await page.waitForSelector(".device .state-active");

  // --- an import dry run, for its report page
  await page.goto(`${base}/users/import`);
  await page.setInputFiles("#csv", {
    name: "a11y.csv", mimeType: "text/csv",
    buffer: Buffer.from("uid,given_name,family_name,email\nalee,Ada,Lee,ada.lee@example.org\n"),
  });
  await page.click("#dry-run");
  await page.waitForURL(/\/users\/import\/[^/]+$/);
  await page.waitForSelector("#dry-run-note", { timeout: 60000 });
  await check(page, "Import dry run report");

  // --- a station to revoke (its one-time token page on the way) and a card in stock
  await page.goto(`${base}/stations`);
  await page.fill("#create-station input[name=name]", "Accessibility desk");
  await page.click("#create-station button[type=submit]");
  await page.waitForSelector("#enrolment-token");
  await check(page, "Enrolment token", { route: false });
  await page.goto(`${base}/stock`);
  await page.fill("#stock-import input[name=model]", "YubiKey 5 NFC");
  await page.fill("#stock-import textarea[name=csv]", "serial\n99000001\n");
  await page.click("#import-stock");
  await page.waitForLoadState("load");

  // --- every other page: follow the links from the User page and the navigation, one page per
  // route; a route that no link reaches and that has no parameter is opened directly.
  const queue = [`${base}/users/jdoe`, `${base}/users`];
  const seen = new Set(queue);
  while (queue.length) {
    const next = queue.shift();
    const route = routeOf(new URL(next).pathname);
    if (!route || visited.has(route)) continue;
    await page.goto(next);
    if (routeOf(new URL(page.url()).pathname) !== route) continue; // a redirect elsewhere
    await check(page, route);
    const links = await page.$$eval("a[href]", (as) => as.map((a) => a.href));
    for (const link of links) {
      const u = new URL(link);
      if (u.origin !== base || seen.has(u.href)) continue;
      const r = routeOf(u.pathname);
      if (r && !visited.has(r)) { seen.add(u.href); queue.push(u.href); }
    }
    if (!queue.length) {
      for (const r of routes) {
        if (!visited.has(r.pattern) && r.params === 0 && !seen.has(`${base}${r.pattern}`)) {
          seen.add(`${base}${r.pattern}`);
          queue.push(`${base}${r.pattern}`);
        }
      }
    }
  }
  // --- a page that only a form leads to: a person deleted (one with no card: not Jane Doe)
  await page.goto(`${base}/users`);
  const other = await page.$$eval("main table a[href^='/users/']", (as) =>
    as.map((a) => a.getAttribute("href")).find((h) => h !== "/users/jdoe"));
  await page.goto(`${base}${other}/delete`);
  await page.click("#confirm-delete");
  await page.waitForLoadState("load");
  await check(page, "Person deleted", { route: false });

  const unvisited = routes.map((r) => r.pattern).filter((p) => !visited.has(p));
  if (unvisited.length) {
    failures.push(`pages no link led to (reach them in tests/e2e/a11y.mjs, or list them in NOT_PAGES): ${unvisited.join(", ")}`);
  }

  await browser.close();
  if (errors.length) failures.push(`script errors: ${errors.join("; ")}`);
  if (failures.length) {
    throw new Error(`${failures.length} accessibility or small-screen failures:\n  ${failures.join("\n  ")}`);
  }

  if (process.env.TESSERA_DOCS_SCREENSHOTS) {
    const docs = path.join(here, "../../docs/images");
    mkdirSync(docs, { recursive: true });
    for (const [step, file] of Object.entries(shots)) {
      copyFileSync(file, path.join(docs, `wizard-mobile-${step}.png`));
    }
  }
  console.log(`browser accessibility: ${visited.size} routes (${titles.size} pages), axe-core serious/critical: 0, ` +
    `none wider than ${PHONE.width} px; ${Object.keys(shots).length} screenshots at ${PHONE.width} px`);
}

run().then(() => { stop(); process.exit(0); }, (e) => {
  console.error(e.message ?? e);
  if (!(e.message ?? "").includes("accessibility or small-screen")) console.error(demo.log);
  stop();
  process.exit(1);
});
