// Whether the person at this tab is here: "active" on input or when the tab is shown, "idle" after a
// while without input (5 minutes unless the page says otherwise) or as soon as the tab is hidden. Only a
// change is reported, so a stream of mouse moves costs one timestamp each, never a frame.

export const IDLE_AFTER_MS = 5 * 60_000;
const INPUT_EVENTS = ["pointerdown", "pointermove", "keydown", "wheel", "touchstart", "focus"];

// The idle timeout a page may ask for, read once at start: `?idle_after_ms=1500` in the address (tests,
// and trying it by hand); anything else means the default.
export function idleAfterFrom(search) {
  const asked = Number(new URLSearchParams(search).get("idle_after_ms"));
  return Number.isInteger(asked) && asked > 0 ? asked : IDLE_AFTER_MS;
}

export class ActivityTracker {
  #state;
  #lastInput = Date.now();
  #timer = null;

  constructor({ onChange, idleAfterMs = IDLE_AFTER_MS, doc = globalThis.document, win = globalThis }) {
    this.onChange = onChange; // (state) => void, called on every change and only then
    this.idleAfterMs = idleAfterMs;
    this.doc = doc;
    this.win = win;
    this.#state = this.#visible() ? "active" : "idle";
    this.onInput = () => this.#input();
    this.onVisibility = () => (this.#visible() ? this.#input() : this.#set("idle"));
  }

  get state() {
    return this.#state;
  }

  start() {
    for (const type of INPUT_EVENTS) this.win.addEventListener(type, this.onInput, { capture: true, passive: true });
    this.doc.addEventListener("visibilitychange", this.onVisibility);
    this.#arm(this.idleAfterMs);
  }

  stop() {
    for (const type of INPUT_EVENTS) this.win.removeEventListener(type, this.onInput, { capture: true });
    this.doc.removeEventListener("visibilitychange", this.onVisibility);
    clearTimeout(this.#timer);
    this.#timer = null;
  }

  #visible() {
    return this.doc.visibilityState !== "hidden";
  }

  #input() {
    this.#lastInput = Date.now();
    if (!this.#visible()) return;
    this.#set("active");
    if (!this.#timer) this.#arm(this.idleAfterMs);
  }

  // One timer at a time, moved forward lazily: it checks the last input when it fires.
  #arm(ms) {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      const quiet = Date.now() - this.#lastInput;
      if (quiet >= this.idleAfterMs) this.#set("idle");
      else this.#arm(this.idleAfterMs - quiet);
    }, ms);
  }

  #set(state) {
    if (state === this.#state) return;
    this.#state = state;
    this.onChange(state);
  }
}
