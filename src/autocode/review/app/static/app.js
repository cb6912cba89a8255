// The case page's progressive enhancement: evidence highlighting, adding searched codes,
// keyboard shortcuts. A static file, since the page's CSP allows no inline script.
"use strict";

(function () {
  const rows = () => Array.from(document.querySelectorAll(".code-row"));
  let selected = -1;

  function select(index) {
    const all = rows();
    if (!all.length) return;
    selected = Math.max(0, Math.min(index, all.length - 1));
    const code = all[selected].dataset.code;
    all.forEach((row, i) => row.classList.toggle("selected", i === selected));
    document.querySelectorAll("mark.ev").forEach((mark) => {
      mark.classList.toggle("hl", mark.dataset.codes.split(" ").includes(code));
    });
    const note = document.getElementById("note");
    const first = document.querySelector("mark.ev.hl");
    if (note) note.classList.add("focused");
    // Scroll the note box alone to the evidence (the page stays where the code row is).
    if (note && first) note.scrollTop = Math.max(0, first.offsetTop - note.clientHeight / 3);
  }

  function decide(action) {
    const row = rows()[selected];
    if (!row) return;
    const radio = row.querySelector(`input[value="${action}"]`);
    if (radio && !radio.disabled) { radio.checked = true; changed(); }
  }

  // What Submit will save, said beside it; and whether anything was changed since load.
  let dirty = false;
  function savedCodes() {
    const accepted = Array.from(document.querySelectorAll('.code-row input[value="accept"]:checked'))
      .map((radio) => radio.closest(".code-row").dataset.code);
    const added = Array.from(document.querySelectorAll('#added input[name="add"]')).map((i) => i.value);
    return accepted.concat(added);
  }
  function showWillSave() {
    const line = document.getElementById("will-save");
    if (!line) return;
    const codes = savedCodes();
    line.textContent = codes.length
      ? `Submit saves ${codes.length} code${codes.length === 1 ? "" : "s"}: ${codes.join(", ")}`
      : "Submit saves no code for this note.";
  }
  function changed() { dirty = true; showWillSave(); }

  function addCode(code, description) {
    const form = document.getElementById("review-form");
    const list = document.getElementById("added");
    if (!form || !list || form.querySelector(`input[name="add"][value="${CSS.escape(code)}"]`)) return;
    // A code the model listed is accepted in its row, not added a second time.
    const index = rows().findIndex((row) => row.dataset.code === code);
    if (index >= 0) {
      select(index);
      decide("accept");
      rows()[index].scrollIntoView({ block: "nearest" });
      return;
    }
    const item = document.createElement("li");
    item.textContent = `${code} — ${description} `;
    const input = document.createElement("input");
    Object.assign(input, { type: "hidden", name: "add", value: code });
    const remove = document.createElement("button");
    Object.assign(remove, { type: "button", textContent: "remove", className: "link" });
    remove.addEventListener("click", () => { item.remove(); changed(); });
    item.append(input, remove);
    list.append(item);
    changed();
  }

  document.addEventListener("click", (event) => {
    const target = event.target.closest("button.code-select, button.add-code");
    if (!target) return;
    if (target.classList.contains("code-select")) {
      select(rows().findIndex((row) => row.dataset.code === target.dataset.code));
    } else {
      addCode(target.dataset.code, target.dataset.description || "");
      target.blur();  // added: the page's shortcuts work again at once
    }
  });

  document.addEventListener("keydown", (event) => {
    // Letters typed into a field, or among the search results (where Enter leaves focus
    // on an Add button), are not shortcuts: "s" there must not skip the case.
    const typing = event.target.closest("input[type=search], input[type=text], input:not([type]), textarea, select, #search-results");
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      const form = document.getElementById("review-form");
      if (form) { event.preventDefault(); form.requestSubmit(); }
      return;
    }
    if (event.target.id === "code-search" && event.key === "Enter") {
      event.preventDefault();  // not a submit: Enter goes to the first result's Add button
      document.querySelector("#search-results button.add-code")?.focus();
      return;
    }
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    const actions = {
      j: () => select(selected + 1),
      k: () => select(selected - 1),
      a: () => decide("accept"),
      r: () => decide("reject"),
      "/": () => document.getElementById("code-search")?.focus(),
      q: () => { window.location.href = "/queue"; },
      n: () => document.getElementById("start")?.click(),
      s: () => document.getElementById("skip")?.click(),
    };
    const action = actions[event.key];
    if (action) { event.preventDefault(); action(); }
  });

  document.addEventListener("change", (event) => {
    // Choosing the search's code system is no choice about the note's codes.
    if (event.target.closest("#review-form") && event.target.id !== "code-system") changed();
  });

  // Forms that take work from someone (an admin's release, reassign) say so first.
  document.addEventListener("submit", (event) => {
    const question = event.target.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });

  document.addEventListener("submit", (event) => {
    if (event.target.id !== "review-form") return;
    if (!savedCodes().length && !window.confirm("Every code is rejected and none added: save this note with no code?")) {
      event.preventDefault();
      return;
    }
    dirty = false;
  });

  // Leaving with unsaved choices (q, a link, a reload) asks first.
  window.addEventListener("beforeunload", (event) => {
    if (dirty) event.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", () => {
    if (document.body.classList.contains("case-page")) {
      const withEvidence = rows().findIndex((row) => row.querySelector(".has-ev"));
      select(withEvidence >= 0 ? withEvidence : 0);
      showWillSave();
    }
  });
})();
