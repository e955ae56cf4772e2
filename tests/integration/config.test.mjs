// config.test.mjs - the configuration and the packaging of build/parley (or
// $PARLEY_BUILD_DIR/parley): a config file (--config, PARLEY_CONFIG), its
// precedence under the environment and flags (defaults < file < environment
// < flags, observed through --max-content and --cors-origin), comma lists in
// the environment, errors with file:line and exit status 2, --help's three
// spellings, --print-man, --version, deploy/parley.conf.example, and
// `make install` / `make uninstall` into a DESTDIR.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  REPO_ROOT, binPath, buildDir, clientPool, emitAck, findSanitizerReport, httpRequest, startServer,
} from './lib/server.mjs';

const SANITIZED = /asan/.test(process.env.PARLEY_BUILD_DIR || '');
const T = SANITIZED ? 15000 : 5000;
const WS = { transports: ['websocket'] };
const BIN = binPath('parley');

// ---- helpers ----------------------------------------------------------------

const dirs = [];
function tmpDir() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-config-'));
  dirs.push(d);
  return d;
}
after(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

/** Writes `text` to a new config file and returns its path. */
function configFile(text) {
  const f = path.join(tmpDir(), 'parley.conf');
  fs.writeFileSync(f, text);
  return f;
}

// The environment of a child without any PARLEY_* variable of ours.
function cleanEnv(extra = {}) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('PARLEY_') && k !== 'PARLEY_BUILD_DIR') delete env[k];
  return { ...env, ...extra };
}

/** Runs the binary to completion: {status, stdout, stderr}. */
function run(args, env = {}) {
  const r = spawnSync(BIN, args, { cwd: REPO_ROOT, env: cleanEnv(env), encoding: 'utf8', timeout: T * 2 });
  if (r.error) throw r.error;
  const report = findSanitizerReport(r.stderr);
  assert.equal(report, null, `sanitizer report: ${report}\n${r.stderr}`);
  return r;
}

async function parley({ args = [], env = {} } = {}) {
  return startServer({
    bin: 'parley',
    args: ['--data', tmpDir(), '--static', '/nonexistent', '--rate-limit', '0', ...args],
    env: cleanEnv(env),
    readyTimeoutMs: T,
  });
}

/** The longest content the server accepts, probed at n-1, n and n+1 code
 *  points ('😀' is one code point and two UTF-16 units). Returns the error
 *  codes (or "ok") for n and n + 1. */
async function contentAt(srv, n) {
  const pool = clientPool();
  try {
    const s = await pool.connect(srv.url, WS, T);
    const name = `cfg${process.pid % 1000}x${Math.floor(Math.random() * 1e6)}`;
    assert.equal((await emitAck(s, 'user:join', [name], T))[0].ok, true);
    assert.equal((await emitAck(s, 'room:create', ['config'], T))[0].ok, true);
    const send = async (k) => {
      const [r] = await emitAck(s, 'message:room', [{ room: 'config', content: '😀'.repeat(k) }], T);
      return r.ok ? 'ok' : r.error;
    };
    return [await send(n), await send(n + 1)];
  } finally {
    pool.closeAll();
  }
}

/** Status of a polling handshake sent with `origin`, and its ACAO header. */
async function originCheck(srv, origin) {
  const r = await httpRequest(`${srv.url}/socket.io/?EIO=4&transport=polling`, { headers: { Origin: origin } });
  return [r.status, r.headers['access-control-allow-origin'] ?? null];
}

// The options, read from --help: [{flag, env, key}].
function optionsFromHelp() {
  const lines = run(['--help']).stdout.split('\n');
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^ {2}--([a-z-]+) [A-Z]+ /.exec(lines[i]);
    if (!m) continue;
    const env = /env (PARLEY_[A-Z_]+)/.exec(lines[i + 1]);
    const key = /config: ([a-z-]+) = /.exec(lines[i + 1]);
    out.push({ flag: m[1], env: env && env[1], key: key && key[1], help: lines[i + 1] });
  }
  return out;
}

// ---- the config file and its precedence --------------------------------------

describe('config file', () => {
  test('sets options: max-content = 10 refuses 11 code points', async () => {
    const file = configFile('# a comment\n\n   max-content = 10   \nlog-level=info\n');
    const srv = await parley({ args: ['--config', file] });
    try {
      assert.deepEqual(await contentAt(srv, 10), ['ok', 'content_too_long']);
    } finally {
      await srv.stop();
    }
  });

  test('PARLEY_CONFIG names the file when --config is absent', async () => {
    const file = configFile('max-content = 7\n');
    const srv = await parley({ env: { PARLEY_CONFIG: file } });
    try {
      assert.deepEqual(await contentAt(srv, 7), ['ok', 'content_too_long']);
    } finally {
      await srv.stop();
    }
  });

  test('the environment overrides the file, and a flag overrides the environment', async () => {
    const file = configFile('max-content = 10\n');
    const env = { PARLEY_MAX_CONTENT: '20' };
    let srv = await parley({ args: ['--config', file], env });
    try {
      assert.deepEqual(await contentAt(srv, 20), ['ok', 'content_too_long'], 'environment over file');
    } finally {
      await srv.stop();
    }
    srv = await parley({ args: ['--config', file, '--max-content', '5'], env });
    try {
      assert.deepEqual(await contentAt(srv, 5), ['ok', 'content_too_long'], 'flag over environment');
    } finally {
      await srv.stop();
    }
  });

  test('list options: lines add up in the file; the environment replaces them, comma-separated', async () => {
    const file = configFile('cors-origin = https://c.example\ncors-origin = https://d.example, https://e.example\n');
    let srv = await parley({ args: ['--config', file] });
    try {
      assert.deepEqual(await originCheck(srv, 'https://c.example'), [200, 'https://c.example']);
      assert.deepEqual(await originCheck(srv, 'https://e.example'), [200, 'https://e.example']);
      assert.deepEqual(await originCheck(srv, 'https://a.example'), [403, null]);
    } finally {
      await srv.stop();
    }
    srv = await parley({ args: ['--config', file], env: { PARLEY_CORS_ORIGIN: 'https://a.example, https://b.example' } });
    try {
      assert.deepEqual(await originCheck(srv, 'https://a.example'), [200, 'https://a.example']);
      assert.deepEqual(await originCheck(srv, 'https://b.example'), [200, 'https://b.example']);
      assert.deepEqual(await originCheck(srv, 'https://c.example'), [403, null], 'the file list was replaced');
    } finally {
      await srv.stop();
    }
    srv = await parley({
      args: ['--config', file, '--cors-origin', 'https://f.example'],
      env: { PARLEY_CORS_ORIGIN: 'https://a.example' },
    });
    try {
      assert.deepEqual(await originCheck(srv, 'https://f.example'), [200, 'https://f.example']);
      assert.deepEqual(await originCheck(srv, 'https://a.example'), [403, null], 'flags replace the environment list');
    } finally {
      await srv.stop();
    }
  });

  test('the per-address handshake rate and the room limits reach their layers', async () => {
    const srv = await parley({ args: ['--config', configFile('handshake-rate = 0.001\nhandshake-burst = 2\n')] });
    try {
      const hs = async () => (await httpRequest(`${srv.url}/socket.io/?EIO=4&transport=polling`)).status;
      assert.deepEqual([await hs(), await hs(), await hs()], [200, 200, 429]);
    } finally {
      await srv.stop();
    }
    const rooms = await parley({ env: { PARLEY_MAX_ROOMS: '1' } });
    const pool = clientPool();
    try {
      const s = await pool.connect(rooms.url, WS, T);
      assert.equal((await emitAck(s, 'user:join', [`rooms${process.pid % 1000}`], T))[0].ok, true);
      assert.equal((await emitAck(s, 'room:create', ['one'], T))[0].ok, true);
      const [second] = await emitAck(s, 'room:create', ['two'], T);
      assert.equal(second.error, 'forbidden');
    } finally {
      pool.closeAll();
      await rooms.stop();
    }
  });

  test('an unknown name, a bad value or a line without "=" exits 2 with file:line', () => {
    const cases = [
      ['port = 8080\n# fine\nmax-contnet = 10\n', 3, /unknown option/],
      ['\n\nmax-content = ten\n', 3, /max-content: needs an integer/],
      ['port = 70000\n', 1, /port: needs an integer from 0 to 65535/],
      ['log-level = loud\n', 1, /log-level: must be debug, info, warn or error/],
      ['rate-limit = -1\n', 1, /rate-limit: needs a non-negative number/],
      ['max-content\n', 1, /expected "name = value"/],
      ['config = /etc/other.conf\n', 1, /cannot be set in a config file/],
    ];
    for (const [text, line, why] of cases) {
      const file = configFile(text);
      const r = run(['--config', file, '--port', '0']);
      assert.equal(r.status, 2, `exit status for ${JSON.stringify(text)}: ${r.stderr}`);
      assert.ok(r.stderr.includes(`${file}:${line}:`), `file:line in ${JSON.stringify(r.stderr)}`);
      assert.match(r.stderr, why);
    }
    const missing = run(['--config', path.join(tmpDir(), 'absent.conf')]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /cannot read config file .*absent\.conf/);
  });

  test('bad values in the environment and in flags exit 2 and name the spelling', () => {
    let r = run(['--port', '0'], { PARLEY_MAX_PAYLOAD: 'lots' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /PARLEY_MAX_PAYLOAD: needs an integer/);
    r = run(['--ping-interval', '-5']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--ping-interval: needs an integer/);
    r = run(['--handshake-rate', '5', '--handshake-burst', '0']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /handshake-rate 5 with handshake-burst 0/);
    r = run(['--no-such-flag']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown argument "--no-such-flag"/);
  });
});

// ---- help, man page, version ------------------------------------------------

describe('--port-file', () => {
  test('holds the port the server answers on, as "PORT\\n", with no temporary file beside it', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'parley.port');
    const srv = await parley({ args: ['--port-file', file] });
    try {
      assert.equal(fs.readFileSync(file, 'utf8'), `${srv.port}\n`);
      assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('parley.port')), ['parley.port']);
      assert.equal((await httpRequest(`${srv.url}/healthz`, { timeoutMs: T })).status, 200);
    } finally {
      await srv.stop();
    }
  });

  test('a port file that cannot be written stops the server with exit status 1', () => {
    const file = path.join(tmpDir(), 'missing-dir', 'parley.port');
    const r = run(['--port', '0', '--host', '127.0.0.1', '--data', tmpDir(), '--static', '/nonexistent',
      '--port-file', file]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /cannot write the port file/);
  });
});

describe('--help, --print-man, --version', () => {
  test('--help lists every option with its flag, environment variable and config key', () => {
    const opts = optionsFromHelp();
    assert.ok(opts.length >= 20, `options parsed from --help: ${opts.length}`);
    const help = run(['--help']).stdout;
    assert.match(help, /defaults < config file < environment < flags/);
    for (const o of opts) {
      assert.equal(o.env, `PARLEY_${o.flag.toUpperCase().replaceAll('-', '_')}`, o.help);
      if (o.flag === 'config') assert.equal(o.key, null, 'config is not a config file key');
      else assert.equal(o.key, o.flag, o.help);
    }
  });

  test('--print-man prints a roff page from the same table: every flag, its environment variable', () => {
    const r = run(['--print-man']);
    assert.equal(r.status, 0);
    assert.ok(r.stdout.startsWith('.TH PARLEY 1'), r.stdout.slice(0, 80));
    for (const section of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'FILES', 'SIGNALS', 'EXIT STATUS', 'SEE ALSO']) {
      assert.match(r.stdout, new RegExp(`^\\.SH ${section}$`, 'm'), section);
    }
    const roff = (s) => s.replaceAll('-', '\\-');
    for (const o of optionsFromHelp()) {
      assert.ok(r.stdout.includes(`\\fB${roff(`--${o.flag}`)}\\fR`), `man page lacks --${o.flag}`);
      assert.ok(r.stdout.includes(o.env), `man page lacks ${o.env}`);
    }
    for (const flag of ['--version', '--help', '--print-man']) assert.ok(r.stdout.includes(roff(flag)), flag);
    const groff = spawnSync('groff', ['-man', '-ww', '-z'], { input: r.stdout, encoding: 'utf8' });
    if (!groff.error) assert.equal(groff.stderr, '', 'groff warnings');
  });

  test('--version prints the version', () => {
    const r = run(['--version']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^parley \d+\.\d+\.\d+\n$/);
  });
});

// ---- deploy/ ------------------------------------------------------------------

describe('deploy/parley.conf.example', () => {
  const example = path.join(REPO_ROOT, 'deploy/parley.conf.example');

  test('documents every config key', () => {
    const text = fs.readFileSync(example, 'utf8');
    for (const o of optionsFromHelp()) {
      if (!o.key) continue;
      assert.match(text, new RegExp(`^#? ?${o.key} =`, 'm'), `the example lacks ${o.key}`);
    }
  });

  test('is accepted by the server as it is (port, data and static overridden)', async () => {
    const srv = await parley({ args: ['--config', example] });
    await srv.stop();
  });
});

// ---- make install -------------------------------------------------------------

describe('make install', () => {
  const build = buildDir();
  const dest = tmpDir();
  const prefix = path.join(dest, 'usr');
  let installed = null;

  // -o: install the binary under test as it is, never rebuild it here.
  const make = (target) => spawnSync('make', ['-s', '-o', `${build}/parley`, target,
    `BUILD=${build}`, `DESTDIR=${dest}`, 'PREFIX=/usr'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60000 });

  test('installs the binary, the man page and the example config under DESTDIR/PREFIX', () => {
    installed = make('install');
    assert.equal(installed.status, 0, installed.stderr);
    const bin = path.join(prefix, 'bin/parley');
    assert.ok(fs.statSync(bin).mode & 0o111, 'bin/parley is executable');
    const v = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    assert.match(v.stdout, /^parley \d/);
    const man = fs.readFileSync(path.join(prefix, 'share/man/man1/parley.1'), 'utf8');
    assert.equal(man, run(['--print-man']).stdout, 'the man page is the --print-man output');
    assert.equal(fs.readFileSync(path.join(prefix, 'share/doc/parley/parley.conf.example'), 'utf8'),
      fs.readFileSync(path.join(REPO_ROOT, 'deploy/parley.conf.example'), 'utf8'));
  });

  test('installs the web UI (web/dist) in share/parley/web', (t) => {
    if (!fs.existsSync(path.join(REPO_ROOT, 'web/dist/index.html'))) {
      t.skip('web/dist does not exist (run make web; make test builds it): the web UI check is skipped');
      return;
    }
    assert.ok(installed && installed.status === 0, 'make install ran');
    assert.equal(fs.readFileSync(path.join(prefix, 'share/parley/web/index.html'), 'utf8'),
      fs.readFileSync(path.join(REPO_ROOT, 'web/dist/index.html'), 'utf8'));
  });

  test('make uninstall removes what install put there', () => {
    const r = make('uninstall');
    assert.equal(r.status, 0, r.stderr);
    for (const f of ['bin/parley', 'share/man/man1/parley.1', 'share/doc/parley/parley.conf.example', 'share/parley/web']) {
      assert.equal(fs.existsSync(path.join(prefix, f)), false, f);
    }
  });
});
