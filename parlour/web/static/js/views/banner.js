// The connection banner: hidden while live; says what is happening otherwise, and offers a way out.

import { h } from "../dom.js";
import { Status } from "../connection.js";

const SHOW_CONNECTING_AFTER_MS = 800; // a quick connect never flashes a banner

export function bannerView({ onRetry, onReload }) {
  const text = h("span", { class: "banner-text" });
  const detail = h("span", { class: "banner-detail", "aria-hidden": "true" }); // a countdown is not announced
  const action = h("button", { type: "button", class: "banner-action", hidden: true });
  const element = h("div", { class: "banner", role: "status", "aria-live": "polite", hidden: true }, text, detail, action);
  let countdown = null;
  let delayed = null;
  let handler = null;

  function show(message, tone, button = null, more = "") {
    clearTimeout(delayed);
    if (text.textContent !== message) text.textContent = message;
    detail.textContent = more;
    element.dataset.tone = tone;
    element.hidden = false;
    action.hidden = !button;
    if (button) {
      action.textContent = button.label;
      handler = button.run;
    }
  }

  action.addEventListener("click", () => handler?.());

  function update(status, info = {}) {
    clearInterval(countdown);
    element.dataset.status = status;
    switch (status) {
      case Status.LIVE:
      case Status.STOPPED:
        clearTimeout(delayed);
        element.hidden = true;
        break;
      case Status.CONNECTING:
      case Status.SYNCING:
        if (element.hidden) {
          clearTimeout(delayed);
          delayed = setTimeout(() => show("Connecting…", "info"), SHOW_CONNECTING_AFTER_MS);
        } else show(status === Status.SYNCING ? "Catching up…" : "Connecting…", "info");
        break;
      case Status.OFFLINE:
        show("You are offline. Messages you write will be sent when the connection is back.", "warn");
        break;
      case Status.WAITING: {
        const tick = () => {
          const seconds = Math.max(0, Math.ceil((info.retryAt - Date.now()) / 1000));
          show("Connection lost.", "warn", { label: "Retry now", run: onRetry }, seconds > 0 ? `Reconnecting in ${seconds} s…` : "Reconnecting…");
        };
        tick();
        countdown = setInterval(tick, 1000);
        break;
      }
      case Status.ENDED:
        show(
          info.reason ? `Disconnected: ${info.reason}` : "Disconnected from the server.",
          "error",
          info.error ? null : { label: "Reconnect", run: onRetry },
        );
        break;
      default:
        show(String(status), "info", { label: "Reload", run: onReload });
    }
  }

  return { element, update };
}
