// The account pages (sign-up, confirmation, forgotten and new password, account and security):
// one module, each page wiring the forms it has. Single-use tokens come in the URL's fragment
// (#token=…), which the browser never sends to a server.

import { $, ErrorBanner, api, guarded, show } from "/static/api.js";

const errors = new ErrorBanner($("#error"));
const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";

function onSubmit(form, button, action) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(errors, button, action);
  });
}

function signUp() {
  onSubmit($("#signup-form"), $("#signup-button"), async () => {
    await api("POST", "/api/signup", {
      email: $("#signup-email").value.trim(),
      name: $("#signup-name").value.trim(),
      password: $("#signup-password").value,
      accept_terms: $("#signup-terms").checked,
    });
    show($("#signup-form"), false);
    show($("#signup-done"));
  });
}

async function confirmEmail() {
  await guarded(errors, null, async () => {
    await api("POST", "/api/signup/confirm", { token });
    show($("#confirm-done"));
  });
  show($("#confirm-waiting"), false);
}

function forgot() {
  onSubmit($("#forgot-form"), $("#forgot-button"), async () => {
    await api("POST", "/api/password/forgot", { email: $("#forgot-email").value.trim() });
    show($("#forgot-form"), false);
    show($("#forgot-done"));
  });
}

function reset() {
  onSubmit($("#reset-form"), $("#reset-button"), async () => {
    await api("POST", "/api/password/reset", { token, password: $("#reset-password").value });
    show($("#reset-form"), false);
    show($("#reset-done"));
  });
}

if ($("#signup-form")) signUp();
if ($("#confirm-done")) confirmEmail();
if ($("#forgot-form")) forgot();
if ($("#reset-form")) reset();
if ($("#security-app")) import("/account/security.js").then((m) => m.start(errors));
