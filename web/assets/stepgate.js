// stepgate hosted pages: the one script, and only for what HTML cannot do — the
// WebAuthn ceremonies. A form with data-webauthn="get" or "create" carries the
// server's options (JSON, binary fields base64url) in data-options; submitting it runs
// the ceremony, puts the credential (JSON, base64url) in its "credential" field and
// sends the form.
"use strict";

function fromB64url(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(b64 + "===".slice((b64.length + 3) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0)).buffer;
}

function toB64url(buffer) {
  let raw = "";
  for (const byte of new Uint8Array(buffer)) raw += String.fromCharCode(byte);
  return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function requestOptions(options) {
  const pk = Object.assign({}, options.publicKey);
  pk.challenge = fromB64url(pk.challenge);
  pk.allowCredentials = (pk.allowCredentials || []).map((c) => Object.assign({}, c, { id: fromB64url(c.id) }));
  return { publicKey: pk };
}

function creationOptions(options) {
  const pk = Object.assign({}, options.publicKey);
  pk.challenge = fromB64url(pk.challenge);
  pk.user = Object.assign({}, pk.user, { id: fromB64url(pk.user.id) });
  pk.excludeCredentials = (pk.excludeCredentials || []).map((c) => Object.assign({}, c, { id: fromB64url(c.id) }));
  return { publicKey: pk };
}

function credentialJson(credential) {
  const r = credential.response;
  const response = { clientDataJSON: toB64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toB64url(r.attestationObject);
  } else {
    response.authenticatorData = toB64url(r.authenticatorData);
    response.signature = toB64url(r.signature);
    response.userHandle = r.userHandle ? toB64url(r.userHandle) : null;
  }
  return JSON.stringify({
    id: credential.id,
    rawId: toB64url(credential.rawId),
    type: credential.type,
    response: response,
    extensions: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
  });
}

function showError(form, text) {
  let p = form.querySelector(".error");
  if (!p) {
    p = document.createElement("p");
    p.className = "error";
    p.setAttribute("role", "alert");
    form.appendChild(p);
  }
  p.textContent = text;
}

document.querySelectorAll("form[data-webauthn]").forEach((form) => {
  form.addEventListener("submit", async (event) => {
    const field = form.querySelector("input[name=credential]");
    if (field.value) return; // the ceremony already ran: send it
    event.preventDefault();
    if (!window.PublicKeyCredential) {
      showError(form, "This browser does not support passkeys.");
      return;
    }
    const options = JSON.parse(form.dataset.options);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const credential = form.dataset.webauthn === "create"
        ? await navigator.credentials.create(creationOptions(options))
        : await navigator.credentials.get(requestOptions(options));
      field.value = credentialJson(credential);
      form.submit();
    } catch (e) {
      button.disabled = false;
      showError(form, "The passkey did not answer (" + e.name + "). Try again.");
    }
  });
});
