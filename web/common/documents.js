// Medical documents on the pages: the patient's upload / list / delete / share, the doctor's
// view of the patient's documents, and the link a shared document shows in the chat.
//
// Files are downloaded from the API as attachments (never shown inline from the server), so a
// document cannot run as a page of this site. Text from the server is set with textContent.

import { api, el, show } from "/static/api.js";

export const MAX_SIZE = 8 * 1024 * 1024;
const ACCEPTED = /\.(jpe?g|png|pdf)$/i;

export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** A link that downloads the document (as an attachment), with what the patient said it is. */
export function documentLink(doc) {
  if (doc.deleted) {
    return el(
      "span",
      { className: "document-ref deleted", "data-testid": "document-deleted" },
      `${doc.filename} (deleted by the patient)`,
    );
  }
  return el(
    "span",
    { className: "document-ref", "data-testid": "document-ref", "data-document-id": doc.id },
    el("a", {
      href: `/api/documents/${doc.id}/content`,
      download: doc.filename,
      text: doc.filename,
      "data-testid": "document-link",
    }),
    el("span", { className: "muted small", text: ` · ${formatSize(doc.size)}` }),
    el("span", {
      className: "document-description",
      "data-testid": "document-description",
      text: doc.description,
    }),
  );
}

/** POST /api/documents as multipart/form-data; resolves to the stored document. */
export function uploadDocument(file, description) {
  const body = new FormData();
  // The description first: the server refuses a bad one before it reads the file.
  body.append("description", description);
  body.append("file", file, file.name);
  return api("POST", "/api/documents", body);
}

/**
 * The patient's own documents: the upload form, the list, delete, and "Share in chat" (enabled
 * while a consultation is active). nodes: {form, file, description, button, list, empty, error}.
 */
export class MyDocuments {
  constructor({ nodes, onShare }) {
    this.nodes = nodes;
    this.onShare = onShare;
    this.documents = [];
    this.maxFiles = 5;
    this.canShare = false;
    nodes.form.addEventListener("submit", (event) => this._onSubmit(event));
  }

  async load() {
    const answer = await api("GET", "/api/documents");
    this.documents = answer.documents;
    this.maxFiles = answer.max_files;
    this.render();
  }

  clear() {
    this.documents = [];
    this.nodes.list.replaceChildren();
    this._error("");
  }

  /** Whether "Share in chat" is offered (there is an active consultation). */
  setCanShare(canShare) {
    if (this.canShare === canShare) return;
    this.canShare = canShare;
    this.render();
  }

  _error(message) {
    this.nodes.error.textContent = message;
    show(this.nodes.error, Boolean(message));
  }

  async _onSubmit(event) {
    event.preventDefault();
    const { file: input, description: text, button } = this.nodes;
    const file = input.files && input.files[0];
    const description = text.value.trim();
    this._error("");
    // Checked here only to spare a useless upload; the server judges the content itself.
    if (!file) return this._error("Choose a file first.");
    if (!ACCEPTED.test(file.name)) return this._error("Only JPEG, PNG and PDF files are accepted.");
    if (file.size > MAX_SIZE) return this._error("The file is larger than 8 MB.");
    if (!description) return this._error("Describe the document for the doctor.");
    button.disabled = true;
    try {
      const doc = await uploadDocument(file, description);
      this.documents.push(doc);
      this.nodes.form.reset();
      this.render();
    } catch (err) {
      this._error(err.message.charAt(0).toUpperCase() + err.message.slice(1));
    } finally {
      button.disabled = false;
    }
  }

  async _delete(doc, button) {
    button.disabled = true;
    this._error("");
    try {
      await api("DELETE", `/api/documents/${doc.id}`);
      this.documents = this.documents.filter((d) => d.id !== doc.id);
      this.render();
    } catch (err) {
      button.disabled = false;
      this._error(err.message);
    }
  }

  async _share(doc, button) {
    button.disabled = true;
    this._error("");
    try {
      await this.onShare(doc);
      button.textContent = "Shared";
    } catch (err) {
      button.disabled = false;
      this._error(err.message.charAt(0).toUpperCase() + err.message.slice(1));
    }
  }

  render() {
    const { list, empty, button } = this.nodes;
    show(empty, this.documents.length === 0);
    const full = this.documents.length >= this.maxFiles;
    button.title = full ? `You keep at most ${this.maxFiles} documents: delete one first.` : "";
    list.replaceChildren(
      ...this.documents.map((doc) => {
        const share = el("button", {
          type: "button",
          className: "secondary",
          text: "Share in chat",
          disabled: !this.canShare,
          "data-testid": "document-share",
          on: { click: () => this._share(doc, share) },
        });
        const remove = el("button", {
          type: "button",
          className: "link",
          text: "Delete",
          "data-testid": "document-delete",
          on: { click: () => this._delete(doc, remove) },
        });
        return el(
          "li",
          { className: "document-item", "data-testid": "document", "data-document-id": doc.id },
          documentLink(doc),
          el("span", { className: "actions" }, share, remove),
        );
      }),
    );
  }
}

/** The doctor's view of the patient's current documents (while consulting them). */
export class PatientDocuments {
  constructor(patientId) {
    this.patientId = patientId;
    this.list = el("ul", { className: "document-list", "data-testid": "patient-documents" });
    this.empty = el("p", { className: "muted", text: "The patient has uploaded no documents." });
    this.element = el("div", { className: "patient-documents" }, this.empty, this.list);
  }

  async load() {
    const { documents } = await api("GET", `/api/patients/${this.patientId}/documents`);
    show(this.empty, documents.length === 0);
    this.list.replaceChildren(
      ...documents.map((doc) =>
        el(
          "li",
          { className: "document-item", "data-testid": "patient-document" },
          documentLink(doc),
        ),
      ),
    );
  }
}
