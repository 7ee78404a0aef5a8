// The prompt-writing page: Ctrl+Enter (Cmd+Enter on a Mac) in the text box submits the form (the browser's own
// validation still runs: a missing category is reported, not sent).
(function () {
  "use strict";
  const text = document.getElementById("prompt-text");
  const form = document.getElementById("write-form");
  if (!text || !form) return;
  text.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
})();
