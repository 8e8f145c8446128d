;; tfjs-contrastive's own WebAssembly SIMD kernels for tfjs-backend-wasm.
;;
;; Assembled by scripts/wasm/build-simd.ts (wabt) into src/core/kernels/simd-binary.ts, twice: once
;; importing a plain memory and once a shared one (tfjs's threaded build). The module imports the
;; wasm backend's own memory and works in place on its tensors: every pointer below is a byte
;; offset into that heap, as tfjs-backend-wasm hands them out.
;;
;; Matrices are [m, c] row-major float32 with c a multiple of 4 (one v128 holds 4 columns). Column
;; reductions keep float32 sums of blocks of 64 rows and fold them into float64 totals, in a
;; caller-provided scratch of 12 c bytes per accumulated quantity, so a sum over millions of rows
;; keeps float32 precision.
;;
;; __MEMORY__ is replaced by the build script with the memory import.
(module
  __MEMORY__

  ;; Column reductions add rows into float32 partial sums for blocks of 64 rows, then fold each
  ;; block into float64 totals: float32 adds at full SIMD width in the hot loop, and an error that
  ;; grows with 64 plus the number of blocks rather than with the number of rows.

  ;; total[j] (float64) += part[j] (float32) for j < c, and part is zeroed.
  (func $fold (param $part i32) (param $total i32) (param $c i32)
    (local $j i32) (local $v v128)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $j) (local.get $c)))
        (local.set $v (v128.load (i32.add (local.get $part) (i32.shl (local.get $j) (i32.const 2)))))
        (v128.store (i32.add (local.get $total) (i32.shl (local.get $j) (i32.const 3)))
          (f64x2.add
            (v128.load (i32.add (local.get $total) (i32.shl (local.get $j) (i32.const 3))))
            (f64x2.promote_low_f32x4 (local.get $v))))
        (v128.store offset=16 (i32.add (local.get $total) (i32.shl (local.get $j) (i32.const 3)))
          (f64x2.add
            (v128.load offset=16 (i32.add (local.get $total) (i32.shl (local.get $j) (i32.const 3))))
            (f64x2.promote_low_f32x4
              (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $next)))
    (memory.fill (local.get $part) (i32.const 0) (i32.shl (local.get $c) (i32.const 2))))

  ;; out[j] = scale * total[j] for j < c, float64 to float32.
  (func $finish (param $total i32) (param $c i32) (param $out i32) (param $scale f64)
    (local $j i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $j) (local.get $c)))
        (f32.store
          (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2)))
          (f32.demote_f64
            (f64.mul (local.get $scale)
              (f64.load (i32.add (local.get $total) (i32.shl (local.get $j) (i32.const 3)))))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $next))))

  ;; The scratch `acc` of the column reductions: float64 totals for q quantities of c columns
  ;; (8 q c bytes), then their float32 block sums (4 q c bytes); zeroes both.
  (func $clear (param $acc i32) (param $q i32) (param $c i32)
    (memory.fill (local.get $acc) (i32.const 0)
      (i32.mul (i32.mul (local.get $q) (local.get $c)) (i32.const 12))))

  ;; out[j] = scale * sum_i x[i, j]: Sum (scale 1) and Mean (scale 1 / m) over the leading axes.
  (func (export "columnSum")
    (param $x i32) (param $m i32) (param $c i32) (param $acc i32) (param $out i32) (param $scale f64)
    (local $i i32) (local $j i32) (local $rowBytes i32) (local $row i32) (local $part i32)
    (local.set $rowBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $part (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3))))
    (call $clear (local.get $acc) (i32.const 1) (local.get $c))
    (local.set $row (local.get $x))
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_u (local.get $i) (local.get $m)))
        (local.set $j (i32.const 0))
        (loop $cols
          (v128.store (i32.add (local.get $part) (local.get $j))
            (f32x4.add
              (v128.load (i32.add (local.get $part) (local.get $j)))
              (v128.load (i32.add (local.get $row) (local.get $j)))))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br_if $cols (i32.lt_u (local.get $j) (local.get $rowBytes))))
        (local.set $row (i32.add (local.get $row) (local.get $rowBytes)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (if (i32.eqz (i32.and (local.get $i) (i32.const 63)))
          (then (call $fold (local.get $part) (local.get $acc) (local.get $c))))
        (br $rows)))
    (call $fold (local.get $part) (local.get $acc) (local.get $c))
    (call $finish (local.get $acc) (local.get $c) (local.get $out) (local.get $scale)))

  ;; out[j] = scale * sum_i (x[i, j] - mean[j])^2: the variance about a known mean.
  (func (export "columnCentredSquares")
    (param $x i32) (param $mean i32) (param $m i32) (param $c i32) (param $acc i32) (param $out i32)
    (param $scale f64)
    (local $i i32) (local $j i32) (local $rowBytes i32) (local $row i32) (local $part i32)
    (local $d v128)
    (local.set $rowBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $part (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3))))
    (call $clear (local.get $acc) (i32.const 1) (local.get $c))
    (local.set $row (local.get $x))
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_u (local.get $i) (local.get $m)))
        (local.set $j (i32.const 0))
        (loop $cols
          (local.set $d
            (f32x4.sub
              (v128.load (i32.add (local.get $row) (local.get $j)))
              (v128.load (i32.add (local.get $mean) (local.get $j)))))
          (v128.store (i32.add (local.get $part) (local.get $j))
            (f32x4.add
              (v128.load (i32.add (local.get $part) (local.get $j)))
              (f32x4.mul (local.get $d) (local.get $d))))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br_if $cols (i32.lt_u (local.get $j) (local.get $rowBytes))))
        (local.set $row (i32.add (local.get $row) (local.get $rowBytes)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (if (i32.eqz (i32.and (local.get $i) (i32.const 63)))
          (then (call $fold (local.get $part) (local.get $acc) (local.get $c))))
        (br $rows)))
    (call $fold (local.get $part) (local.get $acc) (local.get $c))
    (call $finish (local.get $acc) (local.get $c) (local.get $out) (local.get $scale)))

  ;; Batch norm's backward reductions in one pass: out[j] = sum_i dy[i, j] and
  ;; out[c + j] = sum_i dy[i, j] (x[i, j] - mean[j]), the two quantities side by side (2 c columns
  ;; of totals and of block sums in acc).
  (func (export "batchNormGradSums")
    (param $dy i32) (param $x i32) (param $mean i32) (param $m i32) (param $c i32) (param $acc i32)
    (param $out i32)
    (local $i i32) (local $j i32) (local $rowBytes i32) (local $offset i32) (local $part i32)
    (local $second i32) (local $g v128)
    (local.set $rowBytes (i32.shl (local.get $c) (i32.const 2)))
    ;; Totals: 2 c float64 (16 c bytes); block sums after them: dy's, then dy (x - mean)'s.
    (local.set $part (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 4))))
    (local.set $second (i32.add (local.get $part) (local.get $rowBytes)))
    (call $clear (local.get $acc) (i32.const 2) (local.get $c))
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_u (local.get $i) (local.get $m)))
        (local.set $offset (i32.mul (local.get $i) (local.get $rowBytes)))
        (local.set $j (i32.const 0))
        (loop $cols
          (local.set $g (v128.load (i32.add (local.get $dy) (i32.add (local.get $offset) (local.get $j)))))
          (v128.store (i32.add (local.get $part) (local.get $j))
            (f32x4.add (v128.load (i32.add (local.get $part) (local.get $j))) (local.get $g)))
          (v128.store (i32.add (local.get $second) (local.get $j))
            (f32x4.add
              (v128.load (i32.add (local.get $second) (local.get $j)))
              (f32x4.mul
                (local.get $g)
                (f32x4.sub
                  (v128.load (i32.add (local.get $x) (i32.add (local.get $offset) (local.get $j))))
                  (v128.load (i32.add (local.get $mean) (local.get $j)))))))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br_if $cols (i32.lt_u (local.get $j) (local.get $rowBytes))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (if (i32.eqz (i32.and (local.get $i) (i32.const 63)))
          (then (call $fold (local.get $part) (local.get $acc) (i32.shl (local.get $c) (i32.const 1)))))
        (br $rows)))
    (call $fold (local.get $part) (local.get $acc) (i32.shl (local.get $c) (i32.const 1)))
    (call $finish (local.get $acc) (i32.shl (local.get $c) (i32.const 1)) (local.get $out)
      (f64.const 1)))

  ;; y[i, j] = (x[i, j] - mean[j]) scale[j] + shift[j]: batch norm's forward normalisation.
  (func (export "centredAffine")
    (param $x i32) (param $mean i32) (param $scale i32) (param $shift i32) (param $m i32)
    (param $c i32) (param $y i32)
    (local $i i32) (local $j i32) (local $rowBytes i32) (local $offset i32)
    (local.set $rowBytes (i32.shl (local.get $c) (i32.const 2)))
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_u (local.get $i) (local.get $m)))
        (local.set $offset (i32.mul (local.get $i) (local.get $rowBytes)))
        (local.set $j (i32.const 0))
        (loop $cols
          (v128.store (i32.add (local.get $y) (i32.add (local.get $offset) (local.get $j)))
            (f32x4.add
              (f32x4.mul
                (f32x4.sub
                  (v128.load (i32.add (local.get $x) (i32.add (local.get $offset) (local.get $j))))
                  (v128.load (i32.add (local.get $mean) (local.get $j))))
                (v128.load (i32.add (local.get $scale) (local.get $j))))
              (v128.load (i32.add (local.get $shift) (local.get $j)))))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br_if $cols (i32.lt_u (local.get $j) (local.get $rowBytes))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows))))

  ;; dx[i, j] = dy[i, j] s[j] + (x[i, j] - mean[j]) b[j] + o[j]: batch norm's input gradient with
  ;; its per-column factors computed by the caller.
  (func (export "batchNormInputGrad")
    (param $dy i32) (param $x i32) (param $mean i32) (param $s i32) (param $b i32) (param $o i32)
    (param $m i32) (param $c i32) (param $dx i32)
    (local $i i32) (local $j i32) (local $rowBytes i32) (local $offset i32)
    (local.set $rowBytes (i32.shl (local.get $c) (i32.const 2)))
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_u (local.get $i) (local.get $m)))
        (local.set $offset (i32.mul (local.get $i) (local.get $rowBytes)))
        (local.set $j (i32.const 0))
        (loop $cols
          (v128.store (i32.add (local.get $dx) (i32.add (local.get $offset) (local.get $j)))
            (f32x4.add
              (f32x4.add
                (f32x4.mul
                  (v128.load (i32.add (local.get $dy) (i32.add (local.get $offset) (local.get $j))))
                  (v128.load (i32.add (local.get $s) (local.get $j))))
                (f32x4.mul
                  (f32x4.sub
                    (v128.load (i32.add (local.get $x) (i32.add (local.get $offset) (local.get $j))))
                    (v128.load (i32.add (local.get $mean) (local.get $j))))
                  (v128.load (i32.add (local.get $b) (local.get $j)))))
              (v128.load (i32.add (local.get $o) (local.get $j)))))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br_if $cols (i32.lt_u (local.get $j) (local.get $rowBytes))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows))))

  ;; The gradient of 2x2 max pooling with stride 2 and no padding, x [n, h, w, c] with h and w
  ;; even, dy [n, h / 2, w / 2, c]: each window's gradient goes to the first position in row-major
  ;; order holding its maximum (strictly greater than every earlier one, starting from -Infinity,
  ;; as the cpu backend decides), and every other position gets 0. The windows tile x exactly, so
  ;; every element of dx is written once.
  (func (export "maxPool2x2Grad")
    (param $x i32) (param $dy i32) (param $n i32) (param $h i32) (param $w i32) (param $c i32)
    (param $dx i32)
    (local $rows i32) (local $r i32) (local $v i32) (local $j i32) (local $rowBytes i32)
    (local $p00 i32) (local $p01 i32) (local $p10 i32) (local $p11 i32) (local $g i32)
    (local $a v128) (local $b v128) (local $d v128) (local $e v128) (local $best v128)
    (local $sa v128) (local $sb v128) (local $sd v128) (local $se v128) (local $grad v128)
    (local $later v128)
    (local.set $rowBytes (i32.shl (i32.mul (local.get $w) (local.get $c)) (i32.const 2)))
    ;; Output rows: n * h / 2; output row r reads input rows 2r and 2r + 1.
    (local.set $rows (i32.mul (local.get $n) (i32.shr_u (local.get $h) (i32.const 1))))
    (local.set $g (local.get $dy))
    (block $rowsDone
      (loop $outRows
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $p00 (i32.add (local.get $x) (i32.mul (i32.shl (local.get $r) (i32.const 1)) (local.get $rowBytes))))
        (local.set $v (i32.const 0))
        (block $colsDone
          (loop $outCols
            (br_if $colsDone (i32.ge_u (local.get $v) (i32.shr_u (local.get $w) (i32.const 1))))
            (local.set $p01 (i32.add (local.get $p00) (i32.shl (local.get $c) (i32.const 2))))
            (local.set $p10 (i32.add (local.get $p00) (local.get $rowBytes)))
            (local.set $p11 (i32.add (local.get $p01) (local.get $rowBytes)))
            (local.set $j (i32.const 0))
            (loop $chans
              (local.set $a (v128.load (i32.add (local.get $p00) (local.get $j))))
              (local.set $b (v128.load (i32.add (local.get $p01) (local.get $j))))
              (local.set $d (v128.load (i32.add (local.get $p10) (local.get $j))))
              (local.set $e (v128.load (i32.add (local.get $p11) (local.get $j))))
              (local.set $best (f32x4.splat (f32.const -inf)))
              (local.set $sa (f32x4.gt (local.get $a) (local.get $best)))
              (local.set $best (v128.bitselect (local.get $a) (local.get $best) (local.get $sa)))
              (local.set $sb (f32x4.gt (local.get $b) (local.get $best)))
              (local.set $best (v128.bitselect (local.get $b) (local.get $best) (local.get $sb)))
              (local.set $sd (f32x4.gt (local.get $d) (local.get $best)))
              (local.set $best (v128.bitselect (local.get $d) (local.get $best) (local.get $sd)))
              (local.set $se (f32x4.gt (local.get $e) (local.get $best)))
              (local.set $grad (v128.load (i32.add (local.get $g) (local.get $j))))
              ;; A position wins when it was selected and no later one was.
              (v128.store (i32.add (i32.add (local.get $dx) (i32.sub (local.get $p11) (local.get $x))) (local.get $j))
                (v128.and (local.get $grad) (local.get $se)))
              (local.set $later (local.get $se))
              (v128.store (i32.add (i32.add (local.get $dx) (i32.sub (local.get $p10) (local.get $x))) (local.get $j))
                (v128.and (local.get $grad) (v128.andnot (local.get $sd) (local.get $later))))
              (local.set $later (v128.or (local.get $later) (local.get $sd)))
              (v128.store (i32.add (i32.add (local.get $dx) (i32.sub (local.get $p01) (local.get $x))) (local.get $j))
                (v128.and (local.get $grad) (v128.andnot (local.get $sb) (local.get $later))))
              (local.set $later (v128.or (local.get $later) (local.get $sb)))
              (v128.store (i32.add (i32.add (local.get $dx) (i32.sub (local.get $p00) (local.get $x))) (local.get $j))
                (v128.and (local.get $grad) (v128.andnot (local.get $sa) (local.get $later))))
              (local.set $j (i32.add (local.get $j) (i32.const 16)))
              (br_if $chans (i32.lt_u (local.get $j) (i32.shl (local.get $c) (i32.const 2)))))
            (local.set $p00 (i32.add (local.get $p00) (i32.shl (local.get $c) (i32.const 3))))
            (local.set $g (i32.add (local.get $g) (i32.shl (local.get $c) (i32.const 2))))
            (local.set $v (i32.add (local.get $v) (i32.const 1)))
            (br $outCols)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $outRows))))
  ;; The columns of a stride-1 convolution's filter gradient, transposed: from x as [ci, n, h, w]
  ;; (xt), out [kh kw ci, n oh ow] with out[(a kw + b) ci + c, (m oh + u) ow + v] =
  ;; xt[c, m, u + a - top, v + b - left], zero outside the image. Images m0 .. m0 + count - 1 only
  ;; (the columns of a chunk of the batch); every row of out is written whole.
  (func (export "im2colT")
    (param $xt i32) (param $ci i32) (param $n i32) (param $h i32) (param $w i32) (param $kh i32)
    (param $kw i32) (param $top i32) (param $left i32) (param $oh i32) (param $ow i32)
    (param $m0 i32) (param $count i32) (param $out i32)
    (local $a i32) (local $b i32) (local $c i32) (local $m i32) (local $u i32) (local $row i32)
    (local $dst i32) (local $x0 i32) (local $x1 i32) (local $rowBytes i32)
    (local.set $rowBytes (i32.shl (local.get $ow) (i32.const 2)))
    (local.set $dst (local.get $out))
    (block $aDone (loop $aLoop
      (br_if $aDone (i32.ge_u (local.get $a) (local.get $kh)))
      (local.set $b (i32.const 0))
      (block $bDone (loop $bLoop
        (br_if $bDone (i32.ge_u (local.get $b) (local.get $kw)))
        ;; Output columns v with 0 <= v + b - left < w: [x0, x1).
        (local.set $x0 (i32.sub (local.get $left) (local.get $b)))
        (if (i32.lt_s (local.get $x0) (i32.const 0)) (then (local.set $x0 (i32.const 0))))
        (if (i32.gt_s (local.get $x0) (local.get $ow)) (then (local.set $x0 (local.get $ow))))
        (local.set $x1 (i32.add (i32.sub (local.get $w) (local.get $b)) (local.get $left)))
        (if (i32.gt_s (local.get $x1) (local.get $ow)) (then (local.set $x1 (local.get $ow))))
        (if (i32.lt_s (local.get $x1) (local.get $x0)) (then (local.set $x1 (local.get $x0))))
        (local.set $c (i32.const 0))
        (block $cDone (loop $cLoop
          (br_if $cDone (i32.ge_u (local.get $c) (local.get $ci)))
          (local.set $m (local.get $m0))
          (block $mDone (loop $mLoop
            (br_if $mDone (i32.ge_u (local.get $m) (i32.add (local.get $m0) (local.get $count))))
            (local.set $u (i32.const 0))
            (block $uDone (loop $uLoop
              (br_if $uDone (i32.ge_u (local.get $u) (local.get $oh)))
              (local.set $row (i32.sub (i32.add (local.get $u) (local.get $a)) (local.get $top)))
              (if (i32.or (i32.lt_s (local.get $row) (i32.const 0))
                          (i32.ge_s (local.get $row) (local.get $h)))
                (then (memory.fill (local.get $dst) (i32.const 0) (local.get $rowBytes)))
                (else
                  (memory.fill (local.get $dst) (i32.const 0) (i32.shl (local.get $x0) (i32.const 2)))
                  (memory.copy
                    (i32.add (local.get $dst) (i32.shl (local.get $x0) (i32.const 2)))
                    (i32.add (local.get $xt)
                      (i32.shl
                        (i32.add
                          (i32.mul
                            (i32.add
                              (i32.mul (i32.add (i32.mul (local.get $c) (local.get $n)) (local.get $m))
                                (local.get $h))
                              (local.get $row))
                            (local.get $w))
                          (i32.sub (i32.add (local.get $x0) (local.get $b)) (local.get $left)))
                        (i32.const 2)))
                    (i32.shl (i32.sub (local.get $x1) (local.get $x0)) (i32.const 2)))
                  (memory.fill
                    (i32.add (local.get $dst) (i32.shl (local.get $x1) (i32.const 2)))
                    (i32.const 0)
                    (i32.shl (i32.sub (local.get $ow) (local.get $x1)) (i32.const 2)))))
              (local.set $dst (i32.add (local.get $dst) (local.get $rowBytes)))
              (local.set $u (i32.add (local.get $u) (i32.const 1)))
              (br $uLoop)))
            (local.set $m (i32.add (local.get $m) (i32.const 1)))
            (br $mLoop)))
          (local.set $c (i32.add (local.get $c) (i32.const 1)))
          (br $cLoop)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $bLoop)))
      (local.set $a (i32.add (local.get $a) (i32.const 1)))
      (br $aLoop))))
)
