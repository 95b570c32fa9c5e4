// @ts-check
// Desktop notifications of mentions, for a reader who turned them on with the page's button:
// the browser's permission is asked then, and only then (never on loading the page), and
// the choice is remembered in localStorage. Whether a message calls for one is
// attention.js's decision; this module only shows it.

import * as texts from "./texts.js";

const STORE = "aiohttp-chat-notify"; // localStorage key: "on" once turned on, else "off"
const BODY_CHARS = 240; // of the message, in the notification

/** Whether this browser can show notifications at all (not, for one, on an insecure origin). */
export function supported() {
  return typeof Notification === "function" && window.isSecureContext;
}

export class Notifier {
  /** Whether the reader asked for notifications (and the browser lets them be shown). */
  get on() {
    return supported() && this.wanted && Notification.permission === "granted";
  }

  /** Whether the browser was told never to show them: the page cannot ask again. */
  get blocked() {
    return supported() && Notification.permission === "denied";
  }

  get wanted() {
    try {
      return localStorage.getItem(STORE) === "on";
    } catch {
      return false;
    }
  }

  /** @param {boolean} on */
  remember(on) {
    try {
      localStorage.setItem(STORE, on ? "on" : "off");
    } catch {
      // storage disabled (private browsing): not remembered
    }
  }

  /** Turn notifications off, or on: asking the browser's permission if it was not given. */
  async toggle() {
    if (this.on) return this.remember(false);
    if (!supported()) return;
    let permission = Notification.permission;
    if (permission === "default") permission = await Notification.requestPermission();
    this.remember(permission === "granted");
  }

  /** Show a notification, if they are on; `clicked` when the reader clicks it.
   * @param {string} title @param {string} body @param {() => void} [clicked] */
  show(title, body, clicked) {
    if (!this.on) return;
    const text = body.length > BODY_CHARS ? `${body.slice(0, BODY_CHARS - 1)}…` : body;
    let notification;
    try {
      notification = new Notification(title, { body: text });
    } catch {
      return; // (a browser that shows them only from a service worker)
    }
    notification.addEventListener("click", () => {
      window.focus();
      clicked?.();
      notification.close();
    });
  }
}

/** The page's button that turns notifications on and off, kept to say which they are. */
export class NotifyButton {
  /** @param {HTMLButtonElement} button @param {Notifier} notifier */
  constructor(button, notifier) {
    this.button = button;
    this.notifier = notifier;
    this.visible = false;
    button.addEventListener("click", async () => {
      await notifier.toggle();
      this.draw();
    });
    // The permission may have been changed in the browser's settings meanwhile.
    document.addEventListener("visibilitychange", () => this.draw());
    this.draw();
  }

  /** Shown with the conversation, where this browser has notifications.
   * @param {boolean} visible */
  show(visible) {
    this.visible = visible;
    this.draw();
  }

  draw() {
    const { button, notifier } = this;
    button.hidden = !(this.visible && supported());
    const label = button.querySelector(".label") ?? button;
    label.textContent = notifier.blocked ? texts.NOTIFY_BLOCKED : texts.NOTIFY;
    button.title = notifier.blocked ? texts.NOTIFY_BLOCKED_HINT : "";
    button.setAttribute("aria-pressed", String(notifier.on));
  }
}
