// Tiny DOM helpers. User content only ever goes in through text nodes (never innerHTML).

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

// Run `fn` at most once per `ms`, with the last call's arguments delivered at the end.
export function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  let pending = null;
  return (...args) => {
    pending = args;
    const wait = last + ms - Date.now();
    if (wait <= 0) {
      last = Date.now();
      fn(...pending);
    } else if (!timer) {
      timer = setTimeout(() => {
        timer = null;
        last = Date.now();
        fn(...pending);
      }, wait);
    }
  };
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// Where a person's picture is, by their id (null: none known). The app sets it once (from what auth said of
// each user), so every avatar on the page shows the picture without its callers knowing about pictures.
let pictureOf = () => null;

export function setPictureSource(source) {
  pictureOf = source;
}

// A short initial for an avatar, and a stable hue from an id; the person's picture over it when they have
// one (an image that fails to load leaves the initial).
export function avatar(name, id, extraClass = "") {
  const initial = (name || "?").trim().charAt(0).toUpperCase() || "?";
  let hash = 0;
  for (const char of id || name || "") hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  const el = h("span", { class: `avatar hue-${hash % 8} ${extraClass}`.trim(), "aria-hidden": "true" }, initial);
  const url = id ? pictureOf(id) : null;
  if (url) {
    const img = h("img", { class: "avatar-picture", src: url, alt: "", decoding: "async", loading: "lazy" });
    img.addEventListener("error", () => img.remove());
    el.append(img);
  }
  return el;
}

// Coalesce a burst of calls into one run on the next task (not requestAnimationFrame: it stops in
// background tabs, and a chat must stay current there).
export function coalesce(fn) {
  let scheduled = false;
  return () => {
    if (scheduled) return;
    scheduled = true;
    setTimeout(() => {
      scheduled = false;
      fn();
    }, 0);
  };
}
