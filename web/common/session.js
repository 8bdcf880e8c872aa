// The session shell every page shares: restore the session on load, the login form, and the
// logout button. Each page says what entering and leaving mean for it.

import { $, currentUser, guarded, login, loginTotp, logout, show } from "/static/api.js";

// The login's TOTP step (staff, and patients who turned it on): the challenge of the password
// step, sent with the code.
let challenge = null;

function askForCode(answer) {
  challenge = answer.challenge;
  show($("#login-totp"));
  const setup = answer.totp_setup;
  show($("#login-totp-setup"), Boolean(setup));
  if (setup) $("#login-totp-secret").textContent = setup.secret;
  $("#login-code").required = true;
  $("#login-code").focus();
}

function codeAsked(done) {
  challenge = null;
  show($("#login-totp"), false);
  $("#login-code").required = false;
  $("#login-code").value = "";
  const codes = done.recovery_codes;
  if (codes) {
    // Shown once, at the top of the page the user now enters.
    const notice = document.createElement("p");
    notice.className = "notice";
    notice.dataset.testid = "recovery-codes";
    notice.textContent =
      "Two-factor login is on. Keep these recovery codes somewhere safe; each works once " +
      "instead of a code: " + codes.join(" ");
    $("#app-section").prepend(notice);
  }
}

async function logIn() {
  if (challenge) {
    let done;
    try {
      done = await loginTotp(challenge, $("#login-code").value.trim());
    } catch (err) {
      // An expired or used challenge: start again from the password.
      if (err.code && err.code.startsWith("token_")) codeAsked({});
      throw err;
    }
    codeAsked(done);
    return done.user;
  }
  const answer = await login($("#login-email").value.trim(), $("#login-password").value);
  if (answer.totp_required) {
    askForCode(answer);
    return null;
  }
  codeAsked(answer);
  return answer.user;
}

function showLogin() {
  show($("#login-section"));
  show($("#app-section"), false);
  for (const id of ["#whoami", "#logout-button", "#connection"]) show($(id), false);
  $("#login-email").focus();
}

/**
 * Wire the login form and the logout button, then restore the session if there is one.
 * `enter(user)` opens the page for a user; `beforeLogout()` runs while still logged in (best
 * effort); `afterLogout()` clears the page's state.
 */
export async function startSession({ errors, enter, beforeLogout, afterLogout }) {
  $("#login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    await guarded(errors, $("#login-button"), async () => {
      const user = await logIn();
      if (!user) return; // the code is asked for next
      $("#login-password").value = "";
      await enter(user);
    });
  });

  $("#logout-button").addEventListener("click", () =>
    guarded(errors, $("#logout-button"), async () => {
      if (beforeLogout) await beforeLogout();
      await logout();
      afterLogout();
      showLogin();
    }),
  );

  try {
    const me = await currentUser();
    if (me) await enter(me);
    else showLogin();
  } catch (err) {
    showLogin();
    errors.show(err);
  } finally {
    show($("#loading"), false);
  }
}
