/* The labeling page: rank K responses by drag-and-drop or by keyboard alone, validate, submit once.
 *
 * State lives in each card's hidden input `rank_<response id>` (empty = unranked). Dragging, the ↑/↓ buttons and
 * the "tie with the one above" toggles derive every rank from the cards' order; digit keys set one rank and the
 * list re-sorts best first. The validation mirrors annotation/ranking_rules.py; the server checks again.
 * Response and prompt text are untrusted: this file only ever writes text with textContent, never innerHTML.
 */
(function () {
  "use strict";

  const form = document.getElementById("ranking-form");
  if (!form) return;
  const list = document.getElementById("response-list");
  const skipForm = document.getElementById("skip-form");
  const submitButton = document.getElementById("submit-button");
  const skipButton = document.getElementById("skip-button");
  const errorBox = document.getElementById("client-errors");
  const errorList = document.getElementById("client-error-list");
  const status = document.getElementById("rank-status");
  const rationale = document.getElementById("rationale");
  const timeInput = document.getElementById("time-spent");
  const guidelinesPanel = document.getElementById("guidelines-panel");
  const guidelinesToggle = document.getElementById("guidelines-toggle");
  const helpDialog = document.getElementById("help-dialog");
  const allowTies = form.dataset.allowTies === "true";
  const rationaleRequired = form.dataset.rationaleRequired === "true";
  const LETTERS = "ABCDEFGHIJ";

  let submitting = false;
  let triedSubmit = false;
  let current = null; // the card digit keys apply to

  // ---- time spent: only while the page is visible --------------------------------------------------------------
  let spentMs = (parseFloat(form.dataset.timeOffset) || 0) * 1000;
  let visibleSince = document.hidden ? null : performance.now();
  document.addEventListener("visibilitychange", function () {
    if (document.hidden && visibleSince !== null) {
      spentMs += performance.now() - visibleSince;
      visibleSince = null;
    } else if (!document.hidden && visibleSince === null) {
      visibleSince = performance.now();
    }
  });
  function secondsSpent() {
    const running = visibleSince === null ? 0 : performance.now() - visibleSince;
    return Math.round((spentMs + running) / 100) / 10;
  }

  // ---- state helpers ---------------------------------------------------------------------------------------------
  function cards() {
    return Array.from(list.querySelectorAll(".response-card"));
  }
  function byPosition() {
    return cards().sort((a, b) => a.dataset.position - b.dataset.position);
  }
  function rankOf(card) {
    const value = card.querySelector("[data-rank-input]").value.trim();
    return value === "" ? null : Number(value);
  }
  function setRank(card, rank) {
    card.querySelector("[data-rank-input]").value = rank === null ? "" : String(rank);
  }
  function letterOf(card) {
    return card.dataset.letter;
  }

  // Ranks from the cards' order: 1 for the top card, the same as the card above when its tie toggle is on.
  function ranksFromOrder() {
    let rank = 0;
    cards().forEach(function (card, index) {
      const tie = card.querySelector("[data-tie]");
      if (index === 0) tie.checked = false;
      if (!(tie.checked && index > 0)) rank += 1;
      setRank(card, rank);
    });
    refresh();
  }

  // Best first; unranked cards keep their shown order at the bottom.
  function sortByRank() {
    const sorted = cards().sort(function (a, b) {
      const ra = rankOf(a) ?? Infinity;
      const rb = rankOf(b) ?? Infinity;
      return ra - rb || a.dataset.position - b.dataset.position;
    });
    const changed = sorted.some((card, i) => card !== list.children[i]);
    if (changed) {
      const focused = document.activeElement;
      sorted.forEach((card) => list.appendChild(card));
      if (focused && list.contains(focused)) focused.focus({ preventScroll: false });
    }
  }

  function refresh() {
    const all = cards();
    all.forEach(function (card, index) {
      const rank = rankOf(card);
      const above = index > 0 ? rankOf(all[index - 1]) : null;
      const tie = card.querySelector("[data-tie]");
      tie.checked = index > 0 && rank !== null && rank === above;
      tie.disabled = index === 0 || !allowTies;
      card.querySelector(".tie-toggle").hidden = index === 0 || !allowTies;
      card.querySelector('[data-move="up"]').disabled = index === 0;
      card.querySelector('[data-move="down"]').disabled = index === all.length - 1;
      const badge = card.querySelector("[data-rank-display]");
      badge.textContent = rank === null ? "Unranked" : "Rank " + rank + (tie.checked ? " (tie)" : "");
      card.classList.toggle("is-ranked", rank !== null);
      card.setAttribute("aria-posinset", String(index + 1));
    });
    const ranked = all.filter((card) => rankOf(card) !== null).length;
    status.textContent = ranked + " of " + all.length + " ranked";
    if (triedSubmit) showErrors(validate());
  }

  // ---- validation (mirrors annotation/ranking_rules.py) -----------------------------------------------------------
  function pyList(values) {
    return "[" + values.join(", ") + "]";
  }
  function validate() {
    const errors = [];
    const shown = byPosition();
    const k = shown.length;
    const values = [];
    shown.forEach(function (card) {
      const rank = rankOf(card);
      if (rank === null) {
        errors.push("Response " + letterOf(card) + " has no rank: every response must be ranked.");
      } else if (!Number.isInteger(rank)) {
        errors.push("Rank " + rank + " for response " + letterOf(card) + " is not a whole number.");
      } else if (rank < 1 || rank > k) {
        errors.push("Rank " + rank + " for response " + letterOf(card) + " is outside 1.." + k + ".");
      } else {
        values.push(rank);
      }
    });
    if (errors.length === 0) {
      values.sort((a, b) => a - b);
      const distinct = Array.from(new Set(values));
      const missing = distinct.findIndex((got, i) => got !== i + 1);
      if (missing !== -1) {
        errors.push(
          "Ranks must be dense: " + pyList(values) + " skips rank " + (missing + 1) +
            " (ties share a rank, e.g. 1, 2, 2, 3).",
        );
      }
      if (!allowTies && distinct.length !== values.length) {
        errors.push("This project does not allow ties: ranks " + pyList(values) + " repeat a rank.");
      }
    }
    if (rationaleRequired && rationale && rationale.value.trim() === "") {
      errors.push("This project asks for a rationale with every ranking.");
    }
    return errors;
  }
  function showErrors(errors) {
    errorList.replaceChildren();
    errors.forEach(function (message) {
      const item = document.createElement("li");
      item.textContent = message;
      errorList.appendChild(item);
    });
    errorBox.hidden = errors.length === 0;
    cards().forEach((card) => card.classList.toggle("has-error", triedSubmit && rankOf(card) === null));
  }

  // ---- submit and skip --------------------------------------------------------------------------------------------
  function lockButtons(label) {
    submitting = true;
    submitButton.disabled = true;
    skipButton.disabled = true;
    status.textContent = label;
  }
  form.addEventListener("submit", function (event) {
    if (submitting) {
      event.preventDefault(); // a double click or a repeated Enter: the first request is on its way
      return;
    }
    triedSubmit = true;
    const errors = validate();
    showErrors(errors);
    if (errors.length) {
      event.preventDefault();
      errorBox.focus();
      return;
    }
    timeInput.value = String(secondsSpent());
    lockButtons("Submitting…");
  });
  skipForm.addEventListener("submit", function (event) {
    if (submitting) {
      event.preventDefault();
      return;
    }
    lockButtons("Skipping…");
  });
  function submitRanking() {
    if (!submitting) form.requestSubmit(submitButton);
  }
  function skip() {
    if (!submitting) skipForm.requestSubmit();
  }
  // The `s` key asks twice: a stray key press must not lose the prompt (a skipped prompt never comes back).
  let skipArmedUntil = 0;
  function skipByKey() {
    if (Date.now() < skipArmedUntil) {
      skip();
      return;
    }
    skipArmedUntil = Date.now() + 3000;
    status.textContent = "Press s again within 3 seconds to skip this prompt (it will not come back to you).";
  }

  // ---- panels -----------------------------------------------------------------------------------------------------
  function toggleGuidelines(open) {
    const show = open === undefined ? guidelinesPanel.hidden : open;
    guidelinesPanel.hidden = !show;
    guidelinesToggle.setAttribute("aria-expanded", String(show));
    document.body.classList.toggle("guidelines-open", show);
  }
  function toggleHelp() {
    if (helpDialog.open) helpDialog.close();
    else helpDialog.showModal();
  }
  guidelinesToggle.addEventListener("click", () => toggleGuidelines());
  document.getElementById("guidelines-close").addEventListener("click", function () {
    toggleGuidelines(false);
    guidelinesToggle.focus();
  });
  document.getElementById("help-toggle").addEventListener("click", toggleHelp);

  // ---- mouse: drag-and-drop, move buttons, tie toggles ---------------------------------------------------------------
  if (window.Sortable) {
    window.Sortable.create(list, {
      handle: ".drag-handle",
      animation: 120,
      forceFallback: true, // mouse events instead of HTML5 drag: same behaviour in every browser and on touch
      ghostClass: "drag-ghost",
      chosenClass: "drag-chosen",
      onEnd: function (event) {
        event.item.querySelector("[data-tie]").checked = false; // a moved card ranks below its new neighbour
        ranksFromOrder();
        current = event.item;
      },
    });
  }
  list.addEventListener("click", function (event) {
    const button = event.target.closest("[data-move]");
    if (!button) return;
    const card = button.closest(".response-card");
    const sibling = button.dataset.move === "up" ? card.previousElementSibling : card.nextElementSibling;
    if (!sibling) return;
    card.querySelector("[data-tie]").checked = false;
    if (button.dataset.move === "up") list.insertBefore(card, sibling);
    else list.insertBefore(sibling, card);
    ranksFromOrder();
    button.focus();
  });
  list.addEventListener("change", function (event) {
    if (event.target.matches("[data-tie]")) ranksFromOrder();
  });
  list.addEventListener("focusin", function (event) {
    const card = event.target.closest(".response-card");
    if (card) current = card;
  });

  // ---- keyboard -----------------------------------------------------------------------------------------------------
  function focusCard(card) {
    if (!card) return;
    current = card;
    card.focus();
  }
  function move(step) {
    const all = cards();
    const index = current ? all.indexOf(current) : -1;
    const next = index === -1 ? all[0] : all[Math.min(all.length - 1, Math.max(0, index + step))];
    focusCard(next);
  }
  function cardByLetter(letter) {
    return cards().find((card) => card.dataset.letter === letter.toUpperCase()) || null;
  }
  function rankFocused(rank) {
    const card = current || cards()[0];
    const k = cards().length;
    if (rank > k) {
      status.textContent = "Rank " + rank + " is more than the " + k + " responses: use 1–" + k + ".";
      return;
    }
    setRank(card, rank);
    sortByRank();
    refresh();
    focusCard(card);
    status.textContent = "Response " + letterOf(card) + ": rank " + rank + ". " + status.textContent;
  }
  function isTyping(target) {
    if (target.isContentEditable) return true;
    if (target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
    return target.tagName === "INPUT" && !["checkbox", "radio", "button", "submit", "hidden"].includes(target.type);
  }

  document.addEventListener("keydown", function (event) {
    const key = event.key;
    if ((event.ctrlKey || event.metaKey) && key === "Enter") {
      event.preventDefault();
      submitRanking();
      return;
    }
    if (key === "Escape" && !guidelinesPanel.hidden) {
      toggleGuidelines(false);
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
    if (helpDialog.open && key !== "?") return;

    if (key === "?") toggleHelp();
    else if (key === "g") toggleGuidelines();
    else if (key === "s") skipByKey();
    else if (key === "ArrowDown" || key === "j") move(1);
    else if (key === "ArrowUp" || key === "k") move(-1);
    else if (/^[1-9]$/.test(key)) rankFocused(Number(key));
    else if (key === "0") rankFocused(10);
    else if (key === "Backspace" || key === "Delete") {
      if (!current) return;
      setRank(current, null);
      sortByRank();
      refresh();
      focusCard(current);
    } else if (key === "Enter") {
      if (event.target.closest("button, a, summary")) return; // let buttons and links do their own thing
      submitRanking();
    } else if (/^[a-jA-J]$/.test(key) && LETTERS.includes(key.toUpperCase())) {
      const card = cardByLetter(key);
      if (!card) return;
      focusCard(card);
    } else return;
    event.preventDefault();
  });

  // A page re-rendered after a rejected submission keeps the ranks the labeler had entered.
  sortByRank();
  refresh();
  const serverErrors = document.getElementById("server-errors");
  if (serverErrors) serverErrors.focus();
})();
