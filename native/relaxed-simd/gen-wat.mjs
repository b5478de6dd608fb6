// Generates gemm.wat: register-blocked f32 GEMM macro-kernels for wasm SIMD, in two
// flavours that differ only in the multiply-accumulate: `fma` (f32x4.relaxed_madd, one
// hardware FMA on x86 with FMA3 and on ARM) and `muladd` (f32x4.mul then f32x4.add, what
// tfjs-backend-wasm 4.22's XNNPACK build runs). Same loads, same blocking, same loop.
//
//   node gen-wat.mjs [MR] [--fma-only] > gemm.wat   (MR rows per micro-tile, default 6; NR is 8)
// --fma-only leaves out the muladd control kernels (the module the package ships).
//
// C[MR rows, 8 columns] += A[MR rows, kc] * B[kc, 8 columns], tile after tile:
//   for jp in nPanels (B panel of 8 columns, kc x 8, stays in L1)
//     for ip in mPanels (MR rows of A)
//       12 (MR x 2) v128 accumulators; per k: 2 loads of B, MR splat-loads of A, 2 MR FMAs.
//
// Two ways to address A (both avoid packing A):
//   gemm_rows_*: A row r of tile ip starts at i32.load(tbl + (ip*MR + r)*4) + aoff, and is
//                contiguous in k: plain row-major A (tbl = row addresses) and the 3x3
//                convolution as an implicit GEMM (tbl = neighbour pixel or a zero row,
//                one table per tap: XNNPACK's indirection buffer, IGEMM).
//   gemm_cols_*: A[r, k] at pa + (ip*MR + r)*4 + k*ks: A stored transposed, [K, M]
//                row-major (the filter gradient X^T dZ reads X as it is).
// B[k, n] for the panel jp at pb + jp*32 + k*bs + n*4: row-major B (bs = N*4) or a packed
// copy (bs = 32).
// C rows at pc + (ip*MR + r)*ldc + jp*32; acc = 0 overwrites C, acc = 1 adds to it.
// kc must be a multiple of 4; M is padded by the caller to a multiple of MR.

const argv = process.argv.slice(2);
const FMA_ONLY = argv.includes('--fma-only');
const MR = Number(argv.find((a) => !a.startsWith('--')) ?? 6);
const U = 4; // k unrolled by 4

function lines(...xs) {
  return xs.flat(Infinity).join('\n');
}

function kernel(name, mode, op) {
  const accs = [];
  for (let r = 0; r < MR; r++) accs.push(`$c${r}a`, `$c${r}b`);
  const madd = (acc, a, b) =>
    op === 'fma'
      ? [`(local.set ${acc} (f32x4.relaxed_madd (local.get ${a}) (local.get ${b}) (local.get ${acc})))`]
      : [`(local.set ${acc} (f32x4.add (local.get ${acc}) (f32x4.mul (local.get ${a}) (local.get ${b}))))`];

  const rowPtrs = [];
  for (let r = 0; r < MR; r++) rowPtrs.push(`$p${r}`);

  const params =
    mode === 'rows'
      ? '(param $tbl i32) (param $aoff i32)'
      : '(param $pa i32) (param $ks i32)';

  // Per unrolled step u: load B (2 vectors), then for each row splat-load A and madd.
  const step = (u) => {
    const out = [
      `(local.set $b0 (v128.load (local.get $q)))`,
      `(local.set $b1 (v128.load offset=16 (local.get $q)))`,
      `(local.set $q (i32.add (local.get $q) (local.get $bs)))`,
    ];
    for (let r = 0; r < MR; r++) {
      const addr =
        mode === 'rows'
          ? `v128.load32_splat offset=${u * 4} (local.get $p${r})`
          : `v128.load32_splat offset=${r * 4} (local.get $p0)`;
      out.push(`(local.set $a (${addr}))`);
      out.push(...madd(`$c${r}a`, '$a', '$b0'));
      out.push(...madd(`$c${r}b`, '$a', '$b1'));
    }
    if (mode === 'cols') out.push(`(local.set $p0 (i32.add (local.get $p0) (local.get $ks)))`);
    return out;
  };

  const init = [];
  for (let r = 0; r < MR; r++) {
    const crow = `(i32.add (local.get $cp) (i32.mul (i32.const ${r}) (local.get $ldc)))`;
    init.push(
      `(if (local.get $acc) (then`,
      `  (local.set $c${r}a (v128.load ${crow}))`,
      `  (local.set $c${r}b (v128.load offset=16 ${crow}))`,
      `) (else`,
      `  (local.set $c${r}a (v128.const i32x4 0 0 0 0))`,
      `  (local.set $c${r}b (v128.const i32x4 0 0 0 0))))`,
    );
  }
  const store = [];
  for (let r = 0; r < MR; r++) {
    const crow = `(i32.add (local.get $cp) (i32.mul (i32.const ${r}) (local.get $ldc)))`;
    store.push(`(v128.store ${crow} (local.get $c${r}a))`);
    store.push(`(v128.store offset=16 ${crow} (local.get $c${r}b))`);
  }

  const setRows = [];
  if (mode === 'rows') {
    for (let r = 0; r < MR; r++) {
      setRows.push(
        `(local.set $p${r} (i32.add (i32.load offset=${r * 4} (local.get $t)) (local.get $aoff)))`,
      );
    }
  } else {
    setRows.push(`(local.set $p0 (i32.add (local.get $pa) (i32.mul (local.get $ip) (i32.const ${MR * 4}))))`);
  }
  const advanceRows = [];
  if (mode === 'rows') {
    for (let r = 0; r < MR; r++) {
      advanceRows.push(`(local.set $p${r} (i32.add (local.get $p${r}) (i32.const ${U * 4})))`);
    }
  }

  const body = [];
  for (let u = 0; u < U; u++) body.push(...step(u));

  return lines(
    `(func $${name} (export "${name}") ${params} (param $pb i32) (param $bs i32)`,
    `  (param $pc i32) (param $ldc i32) (param $mPanels i32) (param $nPanels i32) (param $kc i32) (param $acc i32)`,
    `  (local $jp i32) (local $ip i32) (local $k i32) (local $q i32) (local $cp i32) (local $t i32)`,
    `  ${rowPtrs.map((p) => `(local ${p} i32)`).join(' ')}`,
    `  (local $a v128) (local $b0 v128) (local $b1 v128)`,
    `  ${accs.map((c) => `(local ${c} v128)`).join(' ')}`,
    `  (local.set $jp (i32.const 0))`,
    `  (block $jdone (loop $jloop`,
    `    (br_if $jdone (i32.ge_u (local.get $jp) (local.get $nPanels)))`,
    `    (local.set $ip (i32.const 0))`,
    mode === 'rows' ? `    (local.set $t (local.get $tbl))` : '',
    `    (block $idone (loop $iloop`,
    `      (br_if $idone (i32.ge_u (local.get $ip) (local.get $mPanels)))`,
    `      (local.set $cp (i32.add (i32.add (local.get $pc) (i32.shl (local.get $jp) (i32.const 5)))`,
    `        (i32.mul (i32.mul (local.get $ip) (i32.const ${MR})) (local.get $ldc))))`,
    `      (local.set $q (i32.add (local.get $pb) (i32.shl (local.get $jp) (i32.const 5))))`,
    setRows.map((s) => '      ' + s),
    init.map((s) => '      ' + s),
    `      (local.set $k (local.get $kc))`,
    `      (block $kdone (loop $kloop`,
    `        (br_if $kdone (i32.eqz (local.get $k)))`,
    body.map((s) => '        ' + s),
    advanceRows.map((s) => '        ' + s),
    `        (local.set $k (i32.sub (local.get $k) (i32.const ${U})))`,
    `        (br $kloop)))`,
    store.map((s) => '      ' + s),
    mode === 'rows' ? `      (local.set $t (i32.add (local.get $t) (i32.const ${MR * 4})))` : '',
    `      (local.set $ip (i32.add (local.get $ip) (i32.const 1)))`,
    `      (br $iloop)))`,
    `    (local.set $jp (i32.add (local.get $jp) (i32.const 1)))`,
    `    (br $jloop)))`,
    `)`,
  );
}

process.stdout.write(
  lines(
    `;; generated by gen-wat.mjs (MR=${MR}, NR=8): do not edit`,
    `(module`,
    `  (import "env" "memory" (memory 1))`,
    `  (global (export "MR") i32 (i32.const ${MR}))`,
    kernel('gemm_rows_fma', 'rows', 'fma'),
    kernel('gemm_cols_fma', 'cols', 'fma'),
    FMA_ONLY ? '' : kernel('gemm_rows_muladd', 'rows', 'muladd'),
    FMA_ONLY ? '' : kernel('gemm_cols_muladd', 'cols', 'muladd'),
    `)`,
    '',
  ),
);
