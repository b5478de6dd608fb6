/**
 * Draws the target image of the Growing NCA example: a smiley 28 pixels across (yellow
 * face with a brown rim, two eyes, a smile and pink cheeks) centred in a 40x40 RGBA
 * picture with a transparent border of 6 pixels, anti-aliased by 8x8 supersampling.
 * Alpha is straight (not premultiplied), as PNG stores it. The border leaves the automaton
 * room to learn where to stop growing.
 *
 * Usage: npx tsx tools/make-target.ts [--out examples/assets/target-40.png]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { PNG } from 'pngjs';

const SIZE = 40;
/** The drawing is made in a 32x32 unit box, shown DRAW pixels wide at (PAD, PAD). */
const DRAW = 28;
const PAD = (SIZE - DRAW) / 2;
const SUPER = 8;

type Rgb = [number, number, number];

const RIM: Rgb = [150, 90, 20];
const FACE: Rgb = [255, 205, 40];
const FEATURE: Rgb = [80, 45, 15];
const CHEEK: Rgb = [245, 130, 90];

/**
 * The colour at a point of the 32x32 unit drawing (x, y in [0, 32)), painted back
 * to front: rim, face, cheeks, eyes, mouth. `null` outside the face.
 */
function paint(x: number, y: number): Rgb | null {
  const cx = 16, cy = 16;
  const r = Math.hypot(x - cx, y - cy);
  if (r > 15.5) return null;
  if (r > 13.8) return RIM;
  let colour: Rgb = FACE;
  for (const ex of [9.5, 22.5]) {
    if (Math.hypot((x - ex) / 2.6, (y - 19.5) / 1.8) <= 1) colour = CHEEK;
  }
  for (const ex of [11, 21]) {
    if (Math.hypot((x - ex) / 1.9, (y - 11.5) / 3) <= 1) colour = FEATURE;
  }
  // The smile: a thick arc of the circle around (16, 15), below y = 18.
  const m = Math.hypot(x - 16, y - 15);
  if (y > 18 && m >= 6.6 && m <= 8.8) colour = FEATURE;
  return colour;
}

function draw(): PNG {
  const png = new PNG({ width: SIZE, height: SIZE });
  for (let py = 0; py < SIZE; py++) {
    for (let px = 0; px < SIZE; px++) {
      let r = 0, g = 0, b = 0, covered = 0;
      for (let sy = 0; sy < SUPER; sy++) {
        for (let sx = 0; sx < SUPER; sx++) {
          const x = ((px - PAD + (sx + 0.5) / SUPER) * 32) / DRAW;
          const y = ((py - PAD + (sy + 0.5) / SUPER) * 32) / DRAW;
          const c = paint(x, y);
          if (c) {
            r += c[0]; g += c[1]; b += c[2];
            covered++;
          }
        }
      }
      const i = (py * SIZE + px) * 4;
      // Straight alpha: the colour is the mean over the covered samples.
      png.data[i] = covered ? Math.round(r / covered) : 0;
      png.data[i + 1] = covered ? Math.round(g / covered) : 0;
      png.data[i + 2] = covered ? Math.round(b / covered) : 0;
      png.data[i + 3] = Math.round((255 * covered) / (SUPER * SUPER));
    }
  }
  return png;
}

const i = process.argv.indexOf('--out');
const out = i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : 'examples/assets/target-40.png';
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, PNG.sync.write(draw()));
console.log(`wrote ${out} (${SIZE}x${SIZE} RGBA)`);
