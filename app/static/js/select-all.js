// "Select all on this page": a checkbox [data-select-all="NAME"] ticks every checkbox named NAME
// in its form. A static file, not an inline script (the CSP allows scripts from this origin only).
document.addEventListener("change", function (event) {
  var all = event.target.closest("[data-select-all]");
  if (!all) return;
  var form = all.form || document;
  form.querySelectorAll('input[type=checkbox][name="' + all.dataset.selectAll + '"]').forEach(function (box) {
    box.checked = all.checked;
  });
});
