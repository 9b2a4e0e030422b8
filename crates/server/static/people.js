// Tessera portal, people pages: the photo crop on the User page and the import's progress bar.
// Both are extras: without script the whole photo is uploaded, and the import page has a Refresh
// link. No inline script anywhere (the portal's Content-Security-Policy forbids it).
"use strict";

// The card's portrait ratio (width / height), as the stored portraits (480 x 600).
const PORTRAIT = 4 / 5;
// The smallest crop the server accepts, in the photo's pixels (its MIN_SIDE).
const MIN_SIDE = 60;
// The corner handle's size on the screen, in canvas pixels.
const HANDLE = 14;

// A crop frame over a picture on a canvas. The frame is kept in the picture's own pixels, at
// the portrait ratio, inside the picture; the hidden fields receive it as whole numbers.
function cropper(canvas, picture, fields) {
  const ctx = canvas.getContext("2d");
  const { width: W, height: H } = picture;
  const scale = Math.min(canvas.width / W, canvas.height / H);
  canvas.width = Math.round(W * scale);
  canvas.height = Math.round(H * scale);

  // The largest portrait frame that fits, centred.
  let fw = Math.min(W, H * PORTRAIT);
  let fh = fw / PORTRAIT;
  const frame = { x: (W - fw) / 2, y: (H - fh) / 2, w: fw, h: fh };
  // Height is width / PORTRAIT, so the width is the smaller side.
  const minW = Math.min(MIN_SIDE, W);

  function clamp() {
    frame.w = Math.min(Math.max(frame.w, minW), W, H * PORTRAIT);
    frame.h = frame.w / PORTRAIT;
    frame.x = Math.min(Math.max(frame.x, 0), W - frame.w);
    frame.y = Math.min(Math.max(frame.y, 0), H - frame.h);
  }

  function publish() {
    // Whole pixels, the frame still inside the picture.
    const w = Math.round(frame.w);
    const h = Math.min(H, Math.round(w / PORTRAIT));
    const x = Math.max(0, Math.min(Math.round(frame.x), W - w));
    const y = Math.max(0, Math.min(Math.round(frame.y), H - h));
    fields.x.value = x;
    fields.y.value = y;
    fields.width.value = w;
    fields.height.value = h;
  }

  function draw() {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(picture, 0, 0, canvas.width, canvas.height);
    const x = frame.x * scale, y = frame.y * scale, w = frame.w * scale, h = frame.h * scale;
    // Shade what the card will not show.
    ctx.fillStyle = "rgba(16, 24, 40, 0.55)";
    ctx.beginPath();
    ctx.rect(0, 0, canvas.width, canvas.height);
    ctx.rect(x, y, w, h);
    ctx.fill("evenodd");
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 2;
    ctx.strokeRect(x, y, w, h);
    ctx.fillStyle = "#1f5fbf";
    ctx.fillRect(x + w - HANDLE, y + h - HANDLE, HANDLE, HANDLE);
    ctx.strokeRect(x + w - HANDLE, y + h - HANDLE, HANDLE, HANDLE);
  }

  // Dragging: inside the frame moves it, its bottom-right corner resizes it.
  let drag = null;
  function at(event) {
    const r = canvas.getBoundingClientRect();
    return {
      x: (event.clientX - r.left) * (canvas.width / r.width) / scale,
      y: (event.clientY - r.top) * (canvas.height / r.height) / scale,
    };
  }
  canvas.addEventListener("pointerdown", (event) => {
    const p = at(event);
    const handle = HANDLE / scale;
    const inCorner = p.x >= frame.x + frame.w - handle * 1.5 && p.x <= frame.x + frame.w + handle / 2
      && p.y >= frame.y + frame.h - handle * 1.5 && p.y <= frame.y + frame.h + handle / 2;
    const inside = p.x >= frame.x && p.x <= frame.x + frame.w && p.y >= frame.y && p.y <= frame.y + frame.h;
    if (!inCorner && !inside) return;
    drag = { mode: inCorner ? "resize" : "move", from: p, start: { ...frame } };
    canvas.setPointerCapture(event.pointerId);
    event.preventDefault();
  });
  canvas.addEventListener("pointermove", (event) => {
    const p = at(event);
    if (!drag) {
      const handle = HANDLE / scale;
      const inCorner = p.x >= frame.x + frame.w - handle * 1.5 && p.y >= frame.y + frame.h - handle * 1.5
        && p.x <= frame.x + frame.w + handle / 2 && p.y <= frame.y + frame.h + handle / 2;
      canvas.style.cursor = inCorner ? "nwse-resize" : "move";
      return;
    }
    const dx = p.x - drag.from.x, dy = p.y - drag.from.y;
    if (drag.mode === "move") {
      frame.x = drag.start.x + dx;
      frame.y = drag.start.y + dy;
    } else {
      // The top-left corner stays; the frame follows the larger of the two movements.
      frame.w = Math.max(drag.start.w + dx, (drag.start.h + dy) * PORTRAIT);
      frame.w = Math.min(frame.w, W - drag.start.x, (H - drag.start.y) * PORTRAIT);
    }
    clamp();
    publish();
    draw();
  });
  const end = () => { drag = null; };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);

  clamp();
  publish();
  draw();
}

// The picture of a chosen file, its pixels as the server will see them (EXIF orientation not
// applied: the server's crop is in the stored pixel grid).
async function pictureOf(file) {
  try {
    return await createImageBitmap(file, { imageOrientation: "none" });
  } catch (_) {
    return await createImageBitmap(file);
  }
}

function setUpCrop(input) {
  const box = document.getElementById(input.dataset.crop);
  const canvas = box.querySelector("canvas");
  const fields = {
    x: document.getElementById("crop-x"),
    y: document.getElementById("crop-y"),
    width: document.getElementById("crop-width"),
    height: document.getElementById("crop-height"),
  };
  const size = { width: canvas.width, height: canvas.height };
  input.addEventListener("change", async () => {
    Object.values(fields).forEach((f) => { f.value = ""; });
    box.hidden = true;
    const file = input.files[0];
    if (!file) return;
    let picture;
    try {
      picture = await pictureOf(file);
    } catch (_) {
      // Not a picture the browser can read: the server says why when it is sent.
      return;
    }
    canvas.width = size.width;
    canvas.height = size.height;
    box.hidden = false;
    cropper(canvas, picture, fields);
  });
}

// The import's progress bar follows the run until it ends, then the page shows the report.
function followImport(run) {
  const bar = document.getElementById("import-progress");
  const message = document.getElementById("import-progress-message");
  const poll = async () => {
    try {
      const res = await fetch(`/users/import/${run.dataset.run}/progress`, { credentials: "same-origin" });
      if (res.ok) {
        const p = await res.json();
        if (p.state !== "running") {
          window.location.reload();
          return;
        }
        if (p.total > 0) {
          bar.max = p.total;
          bar.value = p.done;
          message.textContent = `${p.message}: ${p.done} of ${p.total}`;
        } else {
          bar.removeAttribute("value");
          message.textContent = p.message;
        }
      }
    } catch (_) {
      // A dropped request is retried by the next tick.
    }
    setTimeout(poll, 400);
  };
  setTimeout(poll, 200);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("input[type=file][data-crop]").forEach(setUpCrop);
  const run = document.getElementById("import-run");
  if (run && run.dataset.state === "running") followImport(run);
});
