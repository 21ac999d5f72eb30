// The upload page: plain DOM code around the SDK's browser bundle (served at /assets/conveyor.browser.js).
// Each file gets a row with its progress, pause/resume and cancel; a finished upload can be
// downloaded back through the SDK (parallel ranged GETs) and its SHA-256 compared with the upload's.
// Rows carry their state in data-* attributes (data-state, data-download, data-file-id) for tests.

const KEY_STORAGE = 'conveyor.apiKey';

const keyInput = /** @type {HTMLInputElement} */ (document.getElementById('api-key'));
const filesInput = /** @type {HTMLInputElement} */ (document.getElementById('files'));
const notice = /** @type {HTMLElement} */ (document.getElementById('notice'));
const list = /** @type {HTMLUListElement} */ (document.getElementById('transfers'));
const empty = /** @type {HTMLElement} */ (document.getElementById('empty'));
const template = /** @type {HTMLTemplateElement} */ (document.getElementById('transfer-template'));

/** The SDK's module; undefined until loaded (the key field works before it is). */
let sdk;
const syncKey = setupKey();
sdk = await loadSdk();
syncKey();
if (sdk && !keyInput.value) say('Enter an API key to choose files.');

filesInput.addEventListener('change', () => {
  const files = [...(filesInput.files ?? [])];
  filesInput.value = ''; // choosing the same file again starts (or resumes) it again
  for (const file of files) startUpload(file);
});

/** The SDK module, or undefined with the reason shown (e.g. the server has no bundle built). */
async function loadSdk() {
  const url = '/assets/conveyor.browser.js';
  try {
    return await import(url);
  } catch (err) {
    let reason = err instanceof Error ? err.message : String(err);
    const res = await fetch(url).catch(() => undefined);
    const body = res && !res.ok ? await res.json().catch(() => undefined) : undefined;
    if (body?.error?.message) reason = body.error.message;
    say(`The Conveyor SDK could not be loaded: ${reason}`, true);
    return undefined;
  }
}

/** The key comes from ?key= (then leaves the address bar) or from localStorage. Returns the function that enables the file input. */
function setupKey() {
  const params = new URLSearchParams(location.search);
  const fromUrl = params.get('key');
  if (fromUrl) {
    localStorage.setItem(KEY_STORAGE, fromUrl);
    params.delete('key');
    const rest = params.toString();
    history.replaceState(null, '', `${location.pathname}${rest ? `?${rest}` : ''}${location.hash}`);
  }
  keyInput.value = fromUrl ?? localStorage.getItem(KEY_STORAGE) ?? '';
  const sync = () => {
    const key = keyInput.value.trim();
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
    filesInput.disabled = !sdk || key === '';
  };
  keyInput.addEventListener('input', sync);
  sync();
  return sync;
}

function client() {
  return new sdk.ConveyorClient({ baseUrl: location.origin, apiKey: keyInput.value.trim() });
}

/** Starts uploading `file` in a new row. */
function startUpload(file) {
  const row = /** @type {HTMLLIElement} */ (template.content.firstElementChild.cloneNode(true));
  const $ = (sel) => row.querySelector(sel);
  $('.name').textContent = file.name;
  $('.size').textContent = formatBytes(file.size);
  $('progress').setAttribute('aria-label', `Upload of ${file.name}`);
  list.prepend(row);
  empty.hidden = true;

  const pauseButton = $('.pause');
  const cancelButton = $('.cancel');
  const conveyor = client();
  const startedAt = Date.now();
  let cancelled = false;
  let phase = 'preparing';
  const transfer = conveyor.upload(file);
  transfer.on('progress', (p) => {
    phase = p.phase;
    showProgress(row, p, 'Upload');
  });

  pauseButton.addEventListener('click', () => {
    if (transfer.paused) transfer.resume();
    else transfer.pause();
    pauseButton.textContent = transfer.paused ? 'Resume' : 'Pause';
    setState(row, transfer.paused ? 'paused' : phase, transfer.paused ? 'Paused.' : PHASES[phase]);
  });
  cancelButton.addEventListener('click', async () => {
    cancelled = true;
    cancelButton.disabled = pauseButton.disabled = true;
    transfer.abort(new Error('Cancelled'));
    await transfer.catch(() => {});
    await discardOnServer(conveyor, file, startedAt).catch(() => {});
  });

  transfer.then(
    (result) => {
      pauseButton.hidden = cancelButton.hidden = true;
      row.dataset.fileId = result.fileId;
      row.dataset.sha256Up = base64ToHex(result.sha256);
      $('progress').value = 100;
      const resumed = result.resumed ? `, ${result.chunksSkipped} sent earlier` : '';
      const retries = result.retries ? `, ${result.retries} retries` : '';
      $('.stats').textContent =
        `${formatBytes(result.size)} in ${result.seconds.toFixed(1)} s (${formatRate(result.size / Math.max(result.seconds, 0.001))}), ` +
        `${result.chunksSent} of ${result.chunksTotal} chunks sent${resumed}${retries}, ${result.transport}.`;
      setState(row, 'done', 'Uploaded.');
      $('.digests').hidden = false;
      $('.sha-up').textContent = row.dataset.sha256Up;
      const verify = $('.verify');
      verify.hidden = false;
      verify.addEventListener('click', () => downloadAndVerify(row, conveyor, result));
    },
    (err) => {
      pauseButton.hidden = cancelButton.hidden = true;
      if (cancelled) setState(row, 'cancelled', 'Cancelled.');
      else setState(row, 'failed', `Failed: ${describe(err)}`);
    },
  );
}

/**
 * Downloads the file back through the SDK into a stream that hashes each piece and keeps it (as
 * Blob parts, which the browser may page out to disk), then offers it as a link.
 */
async function downloadAndVerify(row, conveyor, upload) {
  const $ = (sel) => row.querySelector(sel);
  const verify = $('.verify');
  verify.disabled = true;
  const old = $('.save');
  if (old) {
    URL.revokeObjectURL(old.href);
    old.remove();
  }
  row.dataset.download = 'downloading';
  $('progress').setAttribute('aria-label', `Download of ${upload.fileId}`);
  try {
    const hasher = await sdk.wasmHashes.create('sha256');
    const parts = [];
    const sink = new WritableStream({
      write(bytes) {
        hasher.update(bytes);
        parts.push(new Blob([bytes]));
      },
    });
    const transfer = conveyor.download(upload.fileId, sink);
    transfer.on('progress', (p) => showProgress(row, p, 'Download'));
    const result = await transfer;
    const hex = bytesToHex(hasher.digest());
    row.dataset.sha256Down = hex;
    $('.sha-down').textContent = hex;
    const same = hex === row.dataset.sha256Up;
    row.dataset.download = same ? 'verified' : 'mismatch';
    $('.stats').textContent =
      `Downloaded ${formatBytes(result.size)} in ${result.seconds.toFixed(1)} s ` +
      `(${formatRate(result.size / Math.max(result.seconds, 0.001))}), ${result.chunksFetched} ranged GETs.`;
    setState(
      row,
      'done',
      same ? 'Downloaded: identical to what was uploaded.' : 'Downloaded, but the SHA-256 differs from the upload!',
    );
    const save = document.createElement('a');
    save.className = 'save';
    save.textContent = 'Save file';
    save.href = URL.createObjectURL(new Blob(parts, { type: 'application/octet-stream' }));
    save.download = result.fileName;
    $('.actions').append(save);
  } catch (err) {
    row.dataset.download = 'failed';
    setState(row, 'done', `Download failed: ${describe(err)}`);
  } finally {
    verify.disabled = false;
  }
}

/**
 * Cancel means "discard": abort the upload on the server too, so its parts are freed. The SDK's
 * transfer does not say its upload id before it completes, so look for the one it just created.
 */
async function discardOnServer(conveyor, file, startedAt) {
  const { uploads } = await conveyor.list({ limit: 50 });
  const mine = uploads.find(
    (u) =>
      u.fileName === file.name &&
      u.fileSize === file.size &&
      (u.status === 'INITIATED' || u.status === 'IN_PROGRESS') &&
      Date.parse(u.createdAt) >= startedAt - 5000,
  );
  if (mine) await conveyor.abortUpload(mine.uploadId);
}

const PHASES = {
  preparing: 'Preparing…',
  hashing: 'Computing checksums…',
  transferring: 'Uploading…',
  completing: 'Completing…',
  verifying: 'Verifying…',
  done: 'Finishing…',
};

function showProgress(row, p, verb) {
  const $ = (sel) => row.querySelector(sel);
  const pct = p.bytesTotal > 0 ? (100 * p.bytesDone) / p.bytesTotal : 100;
  $('progress').value = pct;
  row.dataset.bytesDone = String(p.bytesDone);
  const parts = [`${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)}`, `${Math.floor(pct)}%`];
  if (p.phase === 'hashing') parts.push('reading the file once');
  else {
    parts.push(formatRate(p.rate));
    if (p.etaSeconds !== undefined && !p.paused) parts.push(`${formatDuration(p.etaSeconds)} left`);
    parts.push(`${p.chunksDone}/${p.chunksTotal} chunks`, `${p.concurrency.current} parallel`);
    if (p.retries) parts.push(`${p.retries} retries`);
  }
  $('.stats').textContent = parts.join(' · ');
  if (row.dataset.download === 'downloading') {
    if (p.phase !== 'done') setState(row, 'done', p.phase === 'verifying' ? 'Verifying…' : 'Downloading…');
  } else if (!p.paused) {
    setState(row, p.phase, verb === 'Upload' ? PHASES[p.phase] : undefined);
  }
}

function setState(row, state, text) {
  row.dataset.state = state;
  if (text !== undefined) row.querySelector('.state').textContent = text;
}

function say(text, isError = false) {
  notice.textContent = text;
  notice.classList.toggle('error', isError);
}

function describe(err) {
  if (!(err instanceof Error)) return String(err);
  const code = /** @type {{ code?: string }} */ (err).code;
  return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
}

function formatBytes(n) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 2 : 1)} ${units[i]}`;
}

function formatRate(bytesPerSecond) {
  return `${formatBytes(bytesPerSecond)}/s`;
}

function formatDuration(seconds) {
  const s = Math.ceil(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function bytesToHex(bytes) {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function base64ToHex(b64) {
  return bytesToHex(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
}
