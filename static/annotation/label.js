/* The labeling page: rank K responses by drag-and-drop or by keyboard alone, validate, submit once.
 *
 * State lives in each card's hidden input `rank_<response id>` (empty = unranked). Dragging, the ↑/↓ buttons and
 * the "tie with the one above" toggles derive every rank from the cards' order; digit keys set one rank and the
 * list re-sorts best first. The validation mirrors annotation/ranking_rules.py; the server checks again.
 *
 * Pairwise projects (data-kind="pairwise") show two cards: A / B / T choose, 1-4 give the strength, and the two
 * hidden ranks follow the choice (1 and 2, or 1 and 1 for a tie).
 *
 * A per-response form (annotation/response_form.py) adds, in every card, a score (Shift+digit on the focused
 * card), yes/no labels (their own letter keys) and free text (`n`); its rules are checked here and on the server.
 * Response and prompt text, field labels and anchors are untrusted: this file only ever writes text with
 * textContent, never innerHTML.
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
  const pairwise = form.dataset.kind === "pairwise";
  const LETTERS = "ABCDEFGHIJ";
  const labelKeys = new Set(Array.from(form.querySelectorAll("[data-shortcut]"), (box) => box.dataset.shortcut));
  const hasLikert = form.querySelector('[data-type="likert"]') !== null;
  const hasText = form.querySelector("[data-rating-text]") !== null;

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
    if (pairwise) {
      refreshPair();
      return;
    }
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
      card.classList.toggle("tied-above", tie.checked); // the tie band joins it to the card above
      card.querySelectorAll("[data-set-rank]").forEach(function (button) {
        const pressed = rank !== null && Number(button.dataset.setRank) === rank;
        button.setAttribute("aria-pressed", String(pressed));
        button.hidden = Number(button.dataset.setRank) > all.length;
      });
      card.setAttribute("aria-posinset", String(index + 1));
    });
    const ranked = all.filter((card) => rankOf(card) !== null).length;
    status.textContent = ranked + " of " + all.length + " ranked";
    if (triedSubmit) showErrors(validate());
  }

  // ---- pairwise: the choice and its strength set the two ranks ------------------------------------------------------
  function choice() {
    const checked = form.querySelector("[data-choice]:checked");
    return checked ? checked.value : null;
  }
  function strengthValue() {
    const checked = form.querySelector("[data-strength]:checked");
    return checked ? Number(checked.value) : null;
  }
  function refreshPair() {
    const [a, b] = byPosition();
    const picked = choice();
    const ranks = { A: [1, 2], B: [2, 1], tie: [1, 1] }[picked] || [null, null];
    setRank(a, ranks[0]);
    setRank(b, ranks[1]);
    form.querySelectorAll("[data-strength]").forEach(function (radio) {
      radio.disabled = picked === "tie";
      if (picked === "tie") radio.checked = false;
    });
    [a, b].forEach(function (card, i) {
      const badge = card.querySelector("[data-rank-display]");
      const rank = ranks[i];
      badge.textContent = rank === null ? "" : picked === "tie" ? "Tie" : rank === 1 ? "Better" : "Worse";
      card.classList.toggle("is-ranked", rank === 1);
    });
    const strength = strengthValue();
    const names = { A: "A is better", B: "B is better", tie: "Tie" };
    status.textContent = picked === null ? "Not chosen yet" : names[picked] + (strength ? " (" + strengthName(strength) + ")" : "");
    if (triedSubmit) showErrors(validate());
  }
  function strengthName(value) {
    const radio = form.querySelector('[data-strength][value="' + value + '"]');
    return radio ? radio.parentElement.textContent.trim().replace(/\s*\d$/, "") : String(value);
  }
  function choose(value) {
    const radio = form.querySelector('[data-choice][value="' + value + '"]');
    if (!radio) {
      status.textContent = "This project does not allow ties.";
      return;
    }
    radio.checked = true;
    refreshPair();
  }
  function setStrength(value) {
    if (choice() === "tie") {
      status.textContent = "A tie has no strength.";
      return;
    }
    const radio = form.querySelector('[data-strength][value="' + value + '"]');
    if (!radio) return;
    radio.checked = true;
    refreshPair();
  }

  // ---- the per-response form: score, yes/no labels, free text -------------------------------------------------------
  function fieldLabel(element) {
    return element.dataset.label || element.dataset.field;
  }
  function missingFields(card) {
    const missing = [];
    card.querySelectorAll('[data-type="likert"][data-required="true"]').forEach(function (fieldset) {
      if (!fieldset.querySelector("input:checked")) missing.push(fieldLabel(fieldset));
    });
    card.querySelectorAll('[data-type="text"][data-required="true"]').forEach(function (box) {
      if (box.querySelector("textarea").value.trim() === "") missing.push(fieldLabel(box));
    });
    return missing;
  }
  function scoreFocused(digit) {
    const card = current || cards()[0];
    const fieldset = card.querySelector('[data-type="likert"]');
    if (!fieldset) return;
    const low = Number(fieldset.dataset.min), high = Number(fieldset.dataset.max);
    const value = digit === 0 && high === 10 ? 10 : digit;
    const radio = fieldset.querySelector('input[value="' + value + '"]');
    if (!radio) {
      status.textContent = fieldLabel(fieldset) + " runs from " + low + " to " + high + ".";
      return;
    }
    radio.checked = true;
    focusCard(card);
    status.textContent = "Response " + letterOf(card) + ": " + fieldLabel(fieldset) + " " + value + ".";
    if (triedSubmit) showErrors(validate());
  }
  function toggleLabel(key) {
    const card = current || cards()[0];
    const box = card.querySelector('[data-shortcut="' + key + '"]');
    if (!box) return;
    box.checked = !box.checked;
    const name = box.parentElement.textContent.trim().replace(/\s*\S$/, "");
    status.textContent = "Response " + letterOf(card) + ": " + name + (box.checked ? " — yes." : " — no.");
  }
  function focusText() {
    const card = current || cards()[0];
    const text = card.querySelector("[data-rating-text]");
    if (text) text.focus();
  }

  // ---- validation (mirrors annotation/ranking_rules.py) -----------------------------------------------------------
  function pyList(values) {
    return "[" + values.join(", ") + "]";
  }
  function validatePair() {
    const errors = [];
    const picked = choice();
    if (picked === null) errors.push(allowTies ? "Choose A, B or a tie." : "Choose A or B.");
    else if (picked !== "tie" && strengthValue() === null) errors.push("Choose how much better it is (1–4).");
    return errors;
  }
  function validateRatings() {
    const errors = [];
    byPosition().forEach(function (card) {
      missingFields(card).forEach(function (name) {
        errors.push("Response " + letterOf(card) + ": " + name + " is required.");
      });
    });
    return errors;
  }
  function validate() {
    const errors = pairwise ? validatePair() : validateRanks();
    errors.push(...validateRatings());
    if (rationaleRequired && rationale && rationale.value.trim() === "") {
      errors.push("This project asks for a rationale with every ranking.");
    }
    return errors;
  }
  function validateRanks() {
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
    cards().forEach(function (card) {
      const unranked = !pairwise && rankOf(card) === null;
      card.classList.toggle("has-error", triedSubmit && (unranked || missingFields(card).length > 0));
    });
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

  // ---- guideline links next to the form's fields: open the panel at the heading they name ---------------------------
  function slug(text) {
    // as django.utils.text.slugify, so a field's default anchor (its label, slugified) finds its heading
    return text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
      .replace(/[^\w\s-]/g, "").replace(/[-\s]+/g, "-").replace(/^[-_]+|[-_]+$/g, "");
  }
  form.addEventListener("click", function (event) {
    const link = event.target.closest("[data-guideline-anchor]");
    if (!link) return;
    event.preventDefault();
    toggleGuidelines(true);
    const wanted = link.dataset.guidelineAnchor;
    const heading = Array.from(guidelinesPanel.querySelectorAll(".markdown h1, .markdown h2, .markdown h3, .markdown h4, .markdown h5, .markdown h6"))
      .find((h) => slug(h.textContent) === wanted);
    guidelinesPanel.querySelectorAll(".guideline-target").forEach((h) => h.classList.remove("guideline-target"));
    if (heading) {
      heading.classList.add("guideline-target");
      heading.scrollIntoView({ block: "start" });
    } else {
      guidelinesPanel.scrollTop = 0;
    }
  });
  form.addEventListener("change", function (event) {
    if (event.target.matches("[data-choice], [data-strength]")) refreshPair();
    else if (triedSubmit && event.target.closest("[data-rating-form]")) showErrors(validate());
  });
  form.addEventListener("input", function (event) {
    if (triedSubmit && event.target.matches("[data-rating-text]")) showErrors(validate());
  });

  // ---- mouse: drag-and-drop, move buttons, tie toggles ---------------------------------------------------------------
  // Where the pointer is decides what a drop does: over the middle half of another card it ties the two (that card
  // shows a tie band while hovered), near a card's top or bottom edge it orders them. Ranks update as cards move.
  let tieTarget = null;
  function setTieTarget(card) {
    if (tieTarget === card) return;
    if (tieTarget) tieTarget.classList.remove("tie-target");
    tieTarget = card;
    if (tieTarget) tieTarget.classList.add("tie-target");
  }
  function describe(card) {
    const rank = rankOf(card);
    const all = cards();
    const mates = all.filter((other) => other !== card && rank !== null && rankOf(other) === rank).map(letterOf);
    return "Response " + letterOf(card) + ": rank " + rank + (mates.length ? ", tied with " + mates.join(" and ") : "") + ".";
  }
  function announce(message) {
    status.textContent = message;
  }
  if (window.Sortable && !pairwise) {
    let dragged = null;
    window.Sortable.create(list, {
      handle: ".drag-handle",
      animation: 120,
      forceFallback: true, // mouse events instead of HTML5 drag: same behaviour in every browser and on touch
      ghostClass: "drag-ghost",
      chosenClass: "drag-chosen",
      // Reorder only when the pointer is near another card's top or bottom edge (Sortable's inverted swap zones,
      // a quarter of the card each); the middle half is the tie zone the pointermove handler below watches.
      invertSwap: true,
      swapThreshold: 0.5,
      onStart: function (event) {
        dragged = event.item;
        setTieTarget(null);
      },
      onChange: function () {
        if (dragged) dragged.querySelector("[data-tie]").checked = false;
        ranksFromOrder(); // the rank numbers follow the drag
      },
      onEnd: function (event) {
        const card = event.item;
        const target = tieTarget;
        setTieTarget(null);
        dragged = null;
        if (target && target !== card) {
          list.insertBefore(card, target.nextElementSibling); // right below the card it was dropped on, same rank
          card.querySelector("[data-tie]").checked = true;
          ranksFromOrder();
          current = card;
          announce(describe(card));
          return;
        }
        card.querySelector("[data-tie]").checked = false; // a moved card ranks below its new neighbour
        ranksFromOrder();
        current = card;
        announce(describe(card));
      },
    });
    // Sortable's onMove only runs when the pointer crosses into another card: keep the tie band honest as the
    // pointer moves within a card too.
    document.addEventListener("pointermove", function (event) {
      if (!dragged || !allowTies) return;
      const under = document.elementFromPoint(event.clientX, event.clientY);
      const card = under && under.closest && under.closest(".response-card");
      if (!card || card === dragged || !list.contains(card)) {
        setTieTarget(null); // over the dragged card's own place, a gap or the ghost: an ordinary move
        return;
      }
      const box = card.getBoundingClientRect();
      const y = (event.clientY - box.top) / box.height;
      setTieTarget(y > 0.25 && y < 0.75 ? card : null);
    });
  }
  // Tapping a rank number (phones and tablets; any pointer): the same as typing the digit on a focused card.
  list.addEventListener("click", function (event) {
    const button = event.target.closest("[data-set-rank]");
    if (!button || pairwise) return;
    current = button.closest(".response-card");
    rankFocused(Number(button.dataset.setRank));
    button.focus();
  });
  list.addEventListener("click", function (event) {
    if (pairwise) return;
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
    announce(describe(card));
  });
  list.addEventListener("change", function (event) {
    if (!pairwise && event.target.matches("[data-tie]")) {
      ranksFromOrder();
      announce(describe(event.target.closest(".response-card")));
    }
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
    if (key === "Escape" && event.target.matches("[data-rating-text]")) {
      const card = event.target.closest(".response-card");
      event.preventDefault();
      focusCard(card); // back from the text field to the card's shortcuts
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
    else if (event.shiftKey && hasLikert && /^Digit[0-9]$/.test(event.code)) scoreFocused(Number(event.code.slice(5)));
    else if (labelKeys.has(key)) toggleLabel(key);
    else if (key === "n" && hasText) focusText();
    else if (pairwise) {
      if (key === "a" || key === "b") choose(key.toUpperCase());
      else if (key === "t") choose("tie");
      else if (/^[1-4]$/.test(key)) setStrength(Number(key));
      else if (key === "ArrowDown" || key === "ArrowRight" || key === "j") move(1);
      else if (key === "ArrowUp" || key === "ArrowLeft" || key === "k") move(-1);
      else if (key === "Enter") {
        if (event.target.closest("button, a, summary")) return;
        submitRanking();
      } else return;
    } else if (key === "ArrowDown" || key === "j") move(1);
    else if (key === "ArrowUp" || key === "k") move(-1);
    else if (/^[1-9]$/.test(key)) rankFocused(Number(key));
    else if (key === "0") rankFocused(10);
    else if (key === "Backspace" || key === "Delete") {
      if (!current) return;
      setRank(current, null);
      sortByRank();
      refresh();
      focusCard(current);
      announce("Response " + letterOf(current) + ": rank cleared.");
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
  if (!pairwise) sortByRank();
  refresh();
  const serverErrors = document.getElementById("server-errors");
  if (serverErrors) serverErrors.focus();
})();
