// Behaviour the Content-Security-Policy keeps out of inline attributes:
// <form data-confirm="Question?"> asks before submitting;
// <select data-autosubmit> submits its form when the choice changes;
// <input data-browser-zone> left empty is filled with the browser's time zone (a proposal the
// person sees and may change), and [data-browser-zone-name] shows that zone's name.
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
