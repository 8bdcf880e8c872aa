// The session shell every page shares: restore the session on load, the login form, and the
// logout button. Each page says what entering and leaving mean for it.

import { $, currentUser, guarded, login, logout, show } from "/static/api.js";

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
      const { user } = await login($("#login-email").value.trim(), $("#login-password").value);
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
