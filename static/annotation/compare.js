/* The compare view of the labeling page: any two responses side by side, word-level differences (jsdiff, vendored),
 * synchronised scrolling and each one's length. `v` opens it on the focused response and the next one; inside, a
 * letter sets the right side and Shift+letter the left; Esc closes. Texts come from json_script and are written
 * with textContent only: response text is untrusted.
 */
(function () {
  "use strict";
  const dialog = document.getElementById("compare-dialog");
  const dataNode = document.getElementById("compare-texts");
  if (!dialog || !dataNode) return;
  const texts = JSON.parse(dataNode.textContent);
  const letters = Object.keys(texts).sort();
  const left = document.getElementById("compare-left");
  const right = document.getElementById("compare-right");
  const panes = [document.getElementById("compare-left-text"), document.getElementById("compare-right-text")];
  window.compareView = { texts: texts };

  for (const select of [left, right]) {
    for (const letter of letters) {
      const option = document.createElement("option");
      option.value = letter;
      option.textContent = "Response " + letter;
      select.appendChild(option);
    }
  }

  const words = (text) => (text.trim() ? text.trim().split(/\s+/).length : 0);

  function render() {
    const a = texts[left.value] || "";
    const b = texts[right.value] || "";
    const parts = window.Diff ? window.Diff.diffWords(a, b) : [{ value: a }];
    panes.forEach((pane) => pane.replaceChildren());
    for (const part of parts) {
      if (!part.added) panes[0].appendChild(piece(part.value, part.removed ? "del" : "span"));
      if (!part.removed) panes[1].appendChild(piece(part.value, part.added ? "ins" : "span"));
    }
    document.getElementById("compare-left-title").textContent = "Response " + left.value;
    document.getElementById("compare-right-title").textContent = "Response " + right.value;
    document.getElementById("compare-left-length").textContent = words(a) + " words, " + a.length + " characters";
    document.getElementById("compare-right-length").textContent = words(b) + " words, " + b.length + " characters";
  }
  function piece(text, tag) {
    const node = document.createElement(tag);
    node.textContent = text;
    return node;
  }

  // Synchronised scrolling: the other pane follows at the same relative position.
  let syncing = false;
  panes.forEach(function (pane, i) {
    pane.addEventListener("scroll", function () {
      if (syncing) return;
      syncing = true;
      const other = panes[1 - i];
      const share = pane.scrollTop / Math.max(1, pane.scrollHeight - pane.clientHeight);
      other.scrollTop = share * Math.max(0, other.scrollHeight - other.clientHeight);
      window.requestAnimationFrame(() => (syncing = false));
    });
  });

  function open(first, second) {
    left.value = first;
    right.value = second;
    render();
    if (!dialog.open) dialog.showModal();
  }
  function focusedLetter() {
    const card = document.activeElement && document.activeElement.closest && document.activeElement.closest(".response-card");
    return card ? card.dataset.letter : letters[0];
  }
  function openFromFocus() {
    const first = focusedLetter();
    const index = letters.indexOf(first);
    open(first, letters[(index + 1) % letters.length]);
  }
  left.addEventListener("change", render);
  right.addEventListener("change", render);
  document.getElementById("compare-toggle").addEventListener("click", openFromFocus);

  function typing(target) {
    return target.isContentEditable || ["TEXTAREA", "SELECT"].includes(target.tagName) ||
      (target.tagName === "INPUT" && !["checkbox", "radio", "button", "submit", "hidden"].includes(target.type));
  }
  // Capture phase: while the view is open its keys must not reach the labeling page's shortcuts behind it.
  document.addEventListener(
    "keydown",
    function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if (dialog.open) {
        if (event.key === "Escape") return; // the dialog closes itself
        const letter = event.key.toUpperCase();
        if (/^[A-J]$/.test(letter) && letters.includes(letter)) {
          (event.shiftKey ? left : right).value = letter;
          render();
        }
        if (event.key !== "Tab") {
          event.stopPropagation();
          if (event.target.tagName !== "SELECT") event.preventDefault();
        }
        return;
      }
      if (event.key === "v" && !typing(event.target) && !document.querySelector("dialog[open]")) {
        event.preventDefault();
        event.stopPropagation();
        openFromFocus();
      }
    },
    true
  );

  // Long answers: every card's text is capped; "Show all" expands the ones that overflow.
  document.querySelectorAll(".response-card .response-text").forEach(function (text) {
    text.classList.add("capped");
    if (text.scrollHeight <= text.clientHeight + 4) {
      text.classList.remove("capped");
      return;
    }
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button small expand-button";
    button.textContent = "Show all";
    button.setAttribute("aria-expanded", "false");
    button.addEventListener("click", function () {
      const expanded = text.classList.toggle("capped") === false;
      button.textContent = expanded ? "Show less" : "Show all";
      button.setAttribute("aria-expanded", String(expanded));
    });
    text.after(button);
  });
})();
