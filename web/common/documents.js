// Medical documents on the pages: the patient's upload / list / delete / share, the doctor's
// view of the patient's documents, and the link a shared document shows in the chat.
//
// Files are downloaded from the API as attachments (never shown inline from the server), so a
// document cannot run as a page of this site. Text from the server is set with textContent.
//
// Live: the server pushes "document:uploaded" and "document:deleted" to the patient's tabs and
// to the doctor consulting them; the pages hand them to the lists (added / removed) and to
// documentDeleted(), which turns every link to the document (in the chat too) into "deleted".

import { ApiError, api, el, show } from "/static/api.js";

export const MAX_SIZE = 8 * 1024 * 1024;
const ACCEPTED = /\.(jpe?g|png|pdf)$/i;
// Documents known to be deleted (ids are never reused): a chat message drawn again later still
// shows its document as deleted, as the transcript does after a reload.
const deletedIds = new Set();

export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

const sentence = (text) => text.charAt(0).toUpperCase() + text.slice(1);

function deletedRef(doc) {
  return el(
    "span",
    {
      className: "document-ref deleted",
      "data-testid": "document-deleted",
      "data-document-id": doc.id,
    },
    `${doc.filename} (deleted by the patient)`,
  );
}

/** A link that downloads the document (as an attachment), with what the patient said it is. */
export function documentLink(doc) {
  if (doc.deleted || deletedIds.has(doc.id)) return deletedRef(doc);
  const ref = el("span", {
    className: "document-ref",
    "data-testid": "document-ref",
    "data-document-id": doc.id,
  });
  ref.append(
    el("a", {
      href: `/api/documents/${doc.id}/content`,
      download: doc.filename,
      text: doc.filename,
      "data-testid": "document-link",
      on: { click: (event) => openDocument(event, doc, ref) },
    }),
    el("span", { className: "muted small", text: ` · ${formatSize(doc.size)}` }),
    el("span", {
      className: "document-description",
      "data-testid": "document-description",
      text: doc.description,
    }),
  );
  return ref;
}

/**
 * The patient deleted the document (a "document:deleted" event, or their own Delete): every
 * link to it on the page, in the lists and in the chat, says so instead. doc: {id, filename}.
 */
export function documentDeleted(doc) {
  deletedIds.add(doc.id);
  for (const node of document.querySelectorAll(".document-ref:not(.deleted)")) {
    if (node.dataset.documentId === String(doc.id)) node.replaceWith(deletedRef(doc));
  }
}

/**
 * Downloads the file through fetch, so that a refusal (deleted meanwhile, no longer yours) is
 * shown as a sentence next to the link rather than as a failed download.
 */
async function openDocument(event, doc, ref) {
  if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
  event.preventDefault();
  if (ref.dataset.opening) return;
  ref.dataset.opening = "true";
  ref.querySelector(".document-error")?.remove();
  try {
    const blob = await fetchFile(`/api/documents/${doc.id}/content`);
    const url = URL.createObjectURL(blob);
    const save = el("a", { href: url, download: doc.filename, hidden: true });
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (err) {
    let where = ref;
    if (err.code === "document_deleted") {
      // Deleted meanwhile (an event this page missed): shown as deleted here and everywhere.
      where = deletedRef(doc);
      ref.replaceWith(where);
      documentDeleted(doc);
    }
    where.append(
      el("span", {
        className: "document-error",
        role: "alert",
        "data-testid": "document-error",
        text: `Cannot open ${doc.filename}: ${err.message.replace(/\.$/, "")}.`,
      }),
    );
  } finally {
    delete ref.dataset.opening;
  }
}

/** A file from the API as a Blob; rejects with ApiError (the JSON error body's code and message)
 * when refused, so the page can say why next to the link. */
export async function fetchFile(path) {
  let response;
  try {
    response = await fetch(path, { credentials: "same-origin" });
  } catch {
    throw new ApiError(0, "network", "the server cannot be reached; check your connection");
  }
  if (response.ok) return response.blob();
  let error = {};
  try {
    error = (await response.json()).error || {};
  } catch {
    error = {};
  }
  throw new ApiError(
    response.status,
    error.code || `http_${response.status}`,
    error.message || `the server answered ${response.status}`,
    error.details,
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
 * A patient's current documents (not deleted), oldest first, kept in step with the server:
 * loaded over HTTP, then moved by the live events. Ids only grow and a deleted one never comes
 * back, so the list is what was loaded, plus what was uploaded since, minus what was deleted.
 */
class CurrentDocuments {
  constructor() {
    this.items = [];
    this.generation = 0; // the latest load; an earlier one answering late is dropped
    this.arrived = new Map(); // uploads pushed while the latest load was on its way
  }

  /** fetchDocuments: () => the documents from the server. Whether they were taken. */
  async load(fetchDocuments) {
    const generation = ++this.generation;
    this.arrived = new Map();
    const documents = await fetchDocuments();
    if (generation !== this.generation) return false;
    const byId = new Map(documents.map((doc) => [doc.id, doc]));
    for (const [id, doc] of this.arrived) byId.set(id, doc);
    this._set([...byId.values()]);
    return true;
  }

  /** An upload (its answer or the event, in either order). Whether the list changed. */
  add(doc) {
    if (deletedIds.has(doc.id)) return false;
    this.arrived.set(doc.id, doc);
    if (this.items.some((d) => d.id === doc.id)) return false;
    this._set([...this.items, doc]);
    return true;
  }

  /** A deletion (its answer or the event). Whether the list changed. */
  remove(id) {
    deletedIds.add(id); // a load answering late leaves it out too
    this.arrived.delete(id);
    const before = this.items.length;
    this._set(this.items);
    return this.items.length !== before;
  }

  clear() {
    this.generation += 1;
    this.arrived = new Map();
    this.items = [];
  }

  _set(items) {
    this.items = items.filter((d) => !deletedIds.has(d.id)).sort((a, b) => a.id - b.id);
  }
}

/**
 * The patient's own documents: the upload form, the list, delete, and "Share in chat" (enabled
 * while a consultation is active). nodes: {form, file, description, button, list, empty, error}.
 * Other tabs' uploads and deletions arrive as added() / removed().
 */
export class MyDocuments {
  constructor({ nodes, onShare }) {
    this.nodes = nodes;
    this.onShare = onShare;
    this.current = new CurrentDocuments();
    this.maxFiles = 5;
    this.canShare = false;
    nodes.form.addEventListener("submit", (event) => this._onSubmit(event));
  }

  get documents() {
    return this.current.items;
  }

  async load() {
    let maxFiles = this.maxFiles;
    const taken = await this.current.load(async () => {
      const answer = await api("GET", "/api/documents");
      maxFiles = answer.max_files;
      return answer.documents;
    });
    if (!taken) return;
    this.maxFiles = maxFiles;
    this.render();
  }

  clear() {
    this.current.clear();
    this.nodes.list.replaceChildren();
    this._error("");
  }

  /** Uploaded, here or in another tab ("document:uploaded"). */
  added(doc) {
    if (this.current.add(doc)) this.render();
  }

  /** Deleted, here or in another tab ("document:deleted"). */
  removed(id) {
    if (this.current.remove(id)) this.render();
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
      this.nodes.form.reset();
      this.added(doc);
    } catch (err) {
      this._error(sentence(err.message));
    } finally {
      button.disabled = false;
    }
  }

  async _delete(doc, button) {
    button.disabled = true;
    this._error("");
    try {
      await api("DELETE", `/api/documents/${doc.id}`);
      documentDeleted(doc);
      this.removed(doc.id);
    } catch (err) {
      button.disabled = false;
      this._error(sentence(err.message));
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
      this._error(sentence(err.message));
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

/**
 * The doctor's view of the patient's current documents (while consulting them); the patient's
 * uploads and deletions arrive as added() / removed().
 */
export class PatientDocuments {
  constructor(patientId) {
    this.patientId = patientId;
    this.current = new CurrentDocuments();
    this.list = el("ul", { className: "document-list", "data-testid": "patient-documents" });
    this.empty = el("p", { className: "muted", text: "The patient has uploaded no documents." });
    this.element = el("div", { className: "patient-documents" }, this.empty, this.list);
  }

  async load() {
    const path = `/api/patients/${this.patientId}/documents`;
    if (await this.current.load(async () => (await api("GET", path)).documents)) this.render();
  }

  added(doc) {
    if (doc.patient_id === this.patientId && this.current.add(doc)) this.render();
  }

  removed(id) {
    if (this.current.remove(id)) this.render();
  }

  render() {
    const documents = this.current.items;
    show(this.empty, documents.length === 0);
    this.list.replaceChildren(
      ...documents.map((doc) =>
        el(
          "li",
          {
            className: "document-item",
            "data-testid": "patient-document",
            "data-document-id": doc.id,
          },
          documentLink(doc),
        ),
      ),
    );
  }
}
