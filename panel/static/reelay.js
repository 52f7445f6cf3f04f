// Behaviour the Content-Security-Policy keeps out of inline attributes:
// <form data-confirm="Question?"> asks before submitting;
// <select data-autosubmit> submits its form when the choice changes;
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
