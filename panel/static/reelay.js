// Behaviour the Content-Security-Policy keeps out of inline attributes:
// <form data-confirm="Question?"> asks before submitting;
// <select data-autosubmit> submits its form when the choice changes.
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
