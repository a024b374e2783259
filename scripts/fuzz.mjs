// npm run fuzz [-- seconds]: builds the libFuzzer targets with clang (ASan + UBSan) and runs
// each for the given time (default 60 s) from a seed corpus of valid files: the fixture
// safetensors files, JSON configs, and PyTorch .bin files and pickles (valid and hostile).
// Exits non-zero on any crash, leak or sanitizer report.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const seconds = Number(process.argv[2] ?? 60);
const build = 'build-fuzz';

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.status !== 0) {
    console.error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal})`);
    process.exit(1);
  }
}

run('cmake', ['-S', '.', '-B', build, '-DCMAKE_CXX_COMPILER=clang++', '-DFUSEDIFF_FUZZ=ON', '-DFUSEDIFF_SANITIZE=ON',
  '-DFUSEDIFF_BUILD_ADDON=OFF', '-DCMAKE_BUILD_TYPE=RelWithDebInfo']);
run('cmake', ['--build', build, '--target', 'fuzz_safetensors', 'fuzz_json', 'fuzz_torch_bin', '-j', '2']);

function corpus(name, ...exts) {
  const dir = path.join(build, `corpus-${name}`);
  mkdirSync(dir, { recursive: true });
  const walk = (d) => {
    for (const entry of readdirSync(d)) {
      const p = path.join(d, entry);
      if (statSync(p).isDirectory()) walk(p);
      else if (exts.some((ext) => p.endsWith(ext)) && statSync(p).size < 1 << 20) copyFileSync(p, path.join(dir, p.replaceAll(path.sep, '_')));
    }
  };
  walk('test/fixtures');
  return dir;
}

const targets = [
  ['fuzz_safetensors', corpus('safetensors', '.safetensors')],
  ['fuzz_json', corpus('json', '.json')],
  ['fuzz_torch_bin', corpus('torch-bin', '.bin', '.pkl')],
];
for (const [target, dir] of targets) {
  console.log(`\n== ${target} for ${seconds} s`);
  run(path.join(build, target), [dir, `-max_total_time=${seconds}`, '-max_len=65536', '-rss_limit_mb=2048', '-print_final_stats=1'], {
    env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1', UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1' },
  });
}
