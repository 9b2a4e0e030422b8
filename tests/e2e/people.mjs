// People in a real browser: headless Chromium driven by playwright-core against `tessera demo`
// (a fresh data folder, a free loopback port). The administrator imports an HR export (a CSV
// with its own column names, one bad line) and a ZIP of the people's portraits: a dry run
// first, then the import. One imported person gets a card through the Device Issuance wizard,
// and the printed front's photo slot must show their portrait (its four coloured quarters, not
// the layout's grey silhouette). A person added by hand gets a photo cropped with the page's
// crop frame, dragged and resized with the mouse; the stored portrait has the frame's size.
// Screenshots of the import form, the dry run's report and the person form go to
// tests/e2e/artifacts/ (and docs/images/ with TESSERA_DOCS_SCREENSHOTS=1).
import { launchChromium, startDemo } from "./demo.mjs";
import { mkdirSync, copyFileSync } from "node:fs";
import { deflateRawSync } from "node:zlib";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const artifacts = path.join(here, "artifacts");
mkdirSync(artifacts, { recursive: true });
const demo = startDemo("people-data");
const { base, stop } = demo;
const PIN = "482916";

// The people of the HR export, each with the colours of their portrait's four quarters.
const PEOPLE = [
  { uid: "mlopez", given: "Maria", family: "Lopez", dept: "Research", title: "Chemist",
    quarters: ["#d62828", "#1d3557", "#2a9d8f", "#f4a261"] },
  { uid: "tnakamura", given: "Takeshi", family: "Nakamura", dept: "Finance", title: "Controller",
    quarters: ["#6a4c93", "#ffca3a", "#1982c4", "#8ac926"] },
  { uid: "aokafor", given: "Amara", family: "Okafor", dept: "Engineering", title: "Site Lead",
    quarters: ["#ff595e", "#3a86ff", "#06d6a0", "#8338ec"] },
];


let shot = 0;
async function snap(page, name) {
  shot += 1;
  const file = path.join(artifacts, `people-${String(shot).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true, timeout: 10000 });
  return file;
}

// --- a ZIP writer (stored and deflated entries, CRC-32): enough for a folder of photos -----------
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function zip(files) {
  const locals = [];
  const central = [];
  let offset = 0;
  for (const { name, data } of files) {
    const nameBuf = Buffer.from(name, "utf8");
    const deflated = deflateRawSync(data);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0, 6);
    local.writeUInt16LE(8, 8); // deflate
    local.writeUInt32LE(0, 10); // time and date: 1980
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(deflated.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBuf.length, 26);
    local.writeUInt16LE(0, 28);
    locals.push(local, nameBuf, deflated);
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt16LE(20, 4);
    entry.writeUInt16LE(20, 6);
    entry.writeUInt16LE(0, 8);
    entry.writeUInt16LE(8, 10);
    entry.writeUInt32LE(0, 12);
    entry.writeUInt32LE(crc, 16);
    entry.writeUInt32LE(deflated.length, 20);
    entry.writeUInt32LE(data.length, 24);
    entry.writeUInt16LE(nameBuf.length, 28);
    entry.writeUInt32LE(offset, 42);
    central.push(entry, nameBuf);
    offset += local.length + nameBuf.length + deflated.length;
  }
  const centralBuf = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(centralBuf.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, centralBuf, end]);
}

// The pixel size of a JPEG, from its SOF marker.
function jpegSize(buf) {
  let i = 2;
  while (i < buf.length) {
    const marker = buf[i + 1];
    const length = buf.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
      return { height: buf.readUInt16BE(i + 5), width: buf.readUInt16BE(i + 7) };
    }
    i += 2 + length;
  }
  throw new Error("no SOF marker");
}

const hex = (h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));

// A portrait drawn by the browser's canvas and encoded by it as JPEG: four coloured quarters
// behind a head and shoulders.
async function portrait(page, quarters, width = 480, height = 600) {
  const b64 = await page.evaluate(({ quarters, width, height }) => {
    const c = document.createElement("canvas");
    c.width = width;
    c.height = height;
    const g = c.getContext("2d");
    const [w2, h2] = [width / 2, height / 2];
    [[0, 0], [w2, 0], [0, h2], [w2, h2]].forEach(([x, y], i) => {
      g.fillStyle = quarters[i];
      g.fillRect(x, y, w2, h2);
    });
    g.fillStyle = "#e0b899";
    g.beginPath();
    g.ellipse(w2, h2 * 0.85, width * 0.14, height * 0.15, 0, 0, Math.PI * 2);
    g.fill();
    g.fillStyle = "#33415c";
    g.beginPath();
    g.ellipse(w2, height * 1.02, width * 0.3, height * 0.28, 0, Math.PI, 0);
    g.fill();
    return c.toDataURL("image/jpeg", 0.92).split(",")[1];
  }, { quarters, width, height });
  return Buffer.from(b64, "base64");
}

async function run() {
  const password = await demo.ready();

  const browser = await launchChromium();
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  // A Content-Security-Policy violation or a failed load is a defect of the page, except the
  // 400 of the refused form this test sends on purpose.
  let refusing = false;
  page.on("console", (m) => {
    if (m.type() === "error" && !(refusing && /status of 400/.test(m.text()))) errors.push(m.text());
  });

  await page.goto(`${base}/login`);
  await page.fill("input[name=operator]", "admin");
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
  await page.waitForURL(/\/users$/);

  // --- the HR export and the photos
  const photos = [];
  for (const p of PEOPLE) photos.push({ name: `${p.uid}.jpg`, data: await portrait(page, p.quarters) });
  const csv = [
    "Employee Number,Given,Surname,E-mail,Org Unit,Job Title,Groups,Picture",
    ...PEOPLE.map((p) => `${p.uid},${p.given},${p.family},${p.uid}@example.org,${p.dept},${p.title},staff;${p.dept.toLowerCase()},${p.uid}.jpg`),
    "jbloggs,Joe,Bloggs,not-an-address,Sales,Rep,staff,",
  ].join("\n") + "\n";

  await page.click("nav a#nav-import");
  await page.waitForURL(/\/users\/import$/);
  await page.setInputFiles("#csv", { name: "hr-export.csv", mimeType: "text/csv", buffer: Buffer.from(csv) });
  await page.setInputFiles("#photos", { name: "portraits.zip", mimeType: "application/zip", buffer: zip(photos) });
  await page.fill("#map-uid", "Employee Number");
  await page.fill("#map-given_name", "Given");
  await page.fill("#map-family_name", "Surname");
  await page.fill("#map-email", "E-mail");
  await page.fill("#map-department", "Org Unit");
  await page.fill("#map-title", "Job Title");
  await page.fill("#map-photo", "Picture");
  const importForm = await snap(page, "import-form");

  // --- dry run: the report, nothing written
  await page.click("#dry-run");
  await page.waitForSelector("#summary", { timeout: 60000 });
  const summary = await page.textContent("#summary");
  assert.match(summary, /4 people read: 3 created, 0 updated/, summary);
  assert.ok(await page.$("#dry-run-note"), "the report says it was a dry run");
  const rejected = await page.$$eval("#rejected tbody tr", (rows) => rows.map((r) => r.textContent));
  assert.equal(rejected.length, 1, `one rejected line: ${rejected}`);
  assert.match(rejected[0], /line 5.*jbloggs.*not an email address/s);
  const report = await snap(page, "import-dry-run-report");
  const missing = await page.request.get(`${base}/users/mlopez`);
  assert.equal(missing.status(), 404, "the dry run wrote nobody");

  // --- the import, from the same files
  await page.click("#apply-import");
  await page.waitForSelector("#import-done", { timeout: 60000 });
  assert.match(await page.textContent("#summary"), /3 created/);
  await snap(page, "import-done");

  // --- an imported person: their page shows the photo and where their record is kept
  const maria = PEOPLE[0];
  await page.click(`#created a[href='/users/${maria.uid}']`);
  await page.waitForURL(new RegExp(`/users/${maria.uid}$`));
  await page.waitForFunction(() => {
    const img = document.querySelector("#user-photo");
    return img && img.complete && img.naturalWidth > 0;
  });
  assert.equal(await page.textContent("#kept-by"), "a CSV import");
  assert.equal(await page.$("#edit-person"), null, "a CSV person is changed at the source");
  await snap(page, "imported-person");

  // --- her card: the wizard, then the printed front's photo slot
  await page.click("#add-device");
  await page.waitForSelector("#printer-tile");
  await page.selectOption("#printer", "Demo Card Printer");
  await page.click("#configure");
  await page.waitForSelector("#change-reader");
  await page.selectOption("#layout", { label: "Corporate Badge" });
  await page.click("#start");
  await page.waitForSelector("#policy");
  await page.selectOption("#policy", { label: "PIV Standard" });
  await page.fill("#pin", PIN);
  await page.fill("#pin-confirm", PIN);
  await page.click("#continue");
  await page.waitForSelector("#print-info", { timeout: 120000 });
  await page.waitForFunction(() => {
    const img = document.querySelector("#preview-front");
    return img && img.complete && img.naturalWidth > 0;
  });
  // The Corporate Badge's photo slot (on the right, clear of the chip): x 59.1, y 15.2,
  // 22.5 x 30 mm on the 85.6 mm card; a 4:5 portrait fills it by height (0.05 mm per photo
  // pixel), centred: the quarters' middles are at photo pixels (120|360, 150|450), card
  // millimetres (64.35|76.35, 22.7|37.7).
  const points = [[64.35, 22.7], [76.35, 22.7], [64.35, 37.7], [76.35, 37.7]];
  const seen = await page.evaluate((points) => {
    const img = document.querySelector("#preview-front");
    const c = document.createElement("canvas");
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    const s = img.naturalWidth / 85.6;
    return points.map(([x, y]) => {
      const d = g.getImageData(Math.round(x * s) - 3, Math.round(y * s) - 3, 7, 7).data;
      const sum = [0, 0, 0];
      for (let i = 0; i < d.length; i += 4) { sum[0] += d[i]; sum[1] += d[i + 1]; sum[2] += d[i + 2]; }
      return sum.map((v) => Math.round(v / (d.length / 4)));
    });
  }, points);
  const placeholder = [[0xdd, 0xe3, 0xea], [0xb8, 0xc2, 0xce]];
  seen.forEach((rgb, i) => {
    const want = hex(maria.quarters[i]);
    const off = Math.max(...rgb.map((v, k) => Math.abs(v - want[k])));
    assert.ok(off <= 40, `quarter ${i} of the printed photo is ${rgb}, the portrait's is ${want}`);
    placeholder.forEach((grey) => {
      assert.ok(Math.max(...rgb.map((v, k) => Math.abs(v - grey[k]))) > 40, `quarter ${i} is not the placeholder`);
    });
  });
  await snap(page, "printed-with-photo");
  await page.click("#continue");
  await page.waitForURL(new RegExp(`/users/${maria.uid}`));
  await page.waitForSelector(".device .state-active");

  // --- a person added by hand, then changed
  await page.goto(`${base}/users/import`);
  await page.click("#add-person");
  await page.waitForURL(/\/users\/new$/);
  await page.fill("#uid", "-praman");
  await page.fill("#given-name", "Priya");
  await page.fill("#family-name", "Raman");
  await page.fill("#email", "priya.raman@example.org");
  await page.fill("#groups", "staff, security");
  refusing = true;
  await page.click("#save-person");
  await page.waitForSelector("#form-error");
  refusing = false;
  assert.match(await page.textContent("#form-error"), /the uid "-praman" must be/i);
  assert.equal(await page.inputValue("#groups"), "staff, security", "what was typed stays");
  await page.fill("#uid", "praman");
  await page.fill("#title", "Security Analyst");
  await page.fill("#attributes", "badge colour=orange\nparking=P2-117");
  await page.click("#save-person");
  await page.waitForURL(/\/users\/praman\?flash=created$/);
  assert.equal(await page.textContent("#kept-by"), "Tessera (added in the portal)");
  await page.click("#edit-person");
  await page.waitForURL(/\/users\/praman\/edit$/);
  await page.fill("#department", "Corporate Security");
  const edit = await snap(page, "user-edit");
  await page.click("#save-person");
  await page.waitForURL(/\/users\/praman\?flash=saved$/);
  assert.match(await page.textContent("dl.attrs"), /Corporate Security.*parking.*P2-117/s);

  // --- her photo, cropped in the browser: a landscape picture, the frame moved and shrunk
  await page.click("#photo-change summary");
  const landscape = await portrait(page, PEOPLE[1].quarters, 800, 600);
  await page.setInputFiles("#photo-file", { name: "priya.jpg", mimeType: "image/jpeg", buffer: landscape });
  await page.waitForSelector("#photo-crop:not([hidden])");
  const field = async (name) => Number(await page.inputValue(`#crop-${name}`));
  // The largest 4:5 frame, centred: 480 x 600 at x 160.
  assert.deepEqual([await field("x"), await field("y"), await field("width"), await field("height")], [160, 0, 480, 600]);
  await page.locator("#crop-canvas").scrollIntoViewIfNeeded();
  const box = await page.locator("#crop-canvas").boundingBox();
  const scale = box.width / 800;
  // Drag the frame 100 photo pixels to the left.
  await page.mouse.move(box.x + 400 * scale, box.y + 300 * scale);
  await page.mouse.down();
  await page.mouse.move(box.x + 350 * scale, box.y + 300 * scale, { steps: 5 });
  await page.mouse.move(box.x + 300 * scale, box.y + 300 * scale, { steps: 5 });
  await page.mouse.up();
  assert.equal(await field("x"), 60, "the frame moved");
  // Drag its corner 100 x 125 photo pixels inwards: 380 x 475.
  const corner = { x: box.x + (60 + 480 - 4) * scale, y: box.y + (600 - 4) * scale };
  await page.mouse.move(corner.x, corner.y);
  await page.mouse.down();
  await page.mouse.move(corner.x - 100 * scale, corner.y - 125 * scale, { steps: 8 });
  await page.mouse.up();
  const frame = [await field("x"), await field("y"), await field("width"), await field("height")];
  assert.deepEqual(frame, [60, 0, 380, 475], "the frame was resized at the portrait ratio");
  await snap(page, "photo-crop");
  await page.click("#upload-photo");
  await page.waitForURL(/\/users\/praman\?flash=photo$/);
  const stored = Buffer.from(await (await page.request.get(`${base}/users/praman/photo`)).body());
  assert.deepEqual(jpegSize(stored), { width: 380, height: 475 }, "the stored portrait is the frame");
  assert.ok(!stored.includes(Buffer.from("Exif")), "no EXIF in the stored portrait");

  assert.deepEqual(errors, [], "no script errors, CSP violations or failed loads");
  await browser.close();

  if (process.env.TESSERA_DOCS_SCREENSHOTS) {
    const docs = path.join(here, "../../docs/images");
    mkdirSync(docs, { recursive: true });
    copyFileSync(importForm, path.join(docs, "people-import.png"));
    copyFileSync(report, path.join(docs, "people-import-report.png"));
    copyFileSync(edit, path.join(docs, "user-edit.png"));
  }
  console.log(`browser people: dry run, import with photos, the photo printed on the card, a crop; ${shot} screenshots in ${artifacts}`);
}

run().then(() => { stop(); process.exit(0); }, (e) => {
  console.error(e);
  console.error(demo.log);
  stop();
  process.exit(1);
});
