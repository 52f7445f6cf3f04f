// Behaviour the Content-Security-Policy keeps out of inline attributes:
// <form data-confirm="Question?"> asks before submitting;
// <select data-autosubmit> submits its form when the choice changes;
// <input data-browser-zone> left empty is filled with the browser's time zone (a proposal the
// person sees and may change), and [data-browser-zone-name] shows that zone's name;
// <button data-copy="#id"> copies that element's text (its sibling .copy-status says so).
document.addEventListener("submit", (event) => {
  const question = event.target.dataset ? event.target.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

document.addEventListener("change", (event) => {
  if (event.target.matches("select[data-autosubmit]") && event.target.form) {
    event.target.form.requestSubmit();
  }
});

document.addEventListener("DOMContentLoaded", () => {
  let zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (error) {
    zone = "";
  }
  // A browser that cannot tell its zone says "Etc/Unknown": propose nothing then.
  if (!zone || zone === "Etc/Unknown") {
    return;
  }
  document.querySelectorAll("input[data-browser-zone]").forEach((input) => {
    if (!input.value) {
      input.value = zone;
    }
  });
  document.querySelectorAll("[data-browser-zone-name]").forEach((element) => {
    element.textContent = zone;
    element.hidden = false;
  });
  document.querySelectorAll("button[data-use-browser-zone]").forEach((button) => {
    button.hidden = false;
    button.addEventListener("click", () => {
      const input = document.getElementById(button.dataset.useBrowserZone);
      if (input) {
        input.value = zone;
      }
    });
  });
});

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain http on a LAN address has no clipboard API: copy through a selected text area.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  const copied = document.execCommand("copy");
  area.remove();
  if (!copied) { throw new Error("copy refused"); }
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest ? event.target.closest("button[data-copy]") : null;
  if (!button) { return; }
  const source = document.querySelector(button.dataset.copy);
  const status = button.parentElement.querySelector(".copy-status");
  try {
    await copyText(source.textContent.trim());
    if (status) { status.textContent = "Copied."; }
  } catch (err) {
    if (status) { status.textContent = "Could not copy: select the text and copy it."; }
  }
});
