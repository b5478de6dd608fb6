/**
 * Pointer and drawing-pad code shared by both pages of the browser example: the VNCA page
 * (main.ts: a digit drawn in white on black; cuts and inpainting marks on the grid) and the
 * training page (train.ts: a coloured picture on a transparent pad; cuts on the automaton).
 *
 * - {@link onDrag}: one pointer dragging across an element (captured, so a drag that leaves
 *   the element keeps reporting), with its position in [0, 1) x [0, 1).
 * - {@link DrawPad}: strokes with round caps and joins between successive pointer positions,
 *   in the canvas's own pixels whatever its CSS size.
 * - {@link inkBounds}: the bounding box of the pixels that count as ink, to crop a drawing.
 */

/** Position of a pointer event on `element`, as fractions of its width and height. */
export function relativePosition(element: Element, e: PointerEvent): { u: number; v: number } {
  const rect = element.getBoundingClientRect();
  return { u: (e.clientX - rect.left) / rect.width, v: (e.clientY - rect.top) / rect.height };
}

/** What {@link onDrag} calls. */
export interface DragHandlers {
  /** Whether a press may start a drag (the primary button is already checked). Default: always. */
  canStart?: (e: PointerEvent) => boolean;
  /**
   * The press and every move of the dragging pointer: `u`, `v` its position on the element
   * (fractions of width and height; outside [0, 1) when it left the element), `first` on the press.
   */
  move: (u: number, v: number, e: PointerEvent, first: boolean) => void;
  /** The drag ended (pointer up or cancelled). */
  end?: () => void;
}

/**
 * Follows one pointer dragging across `element` with the primary button: captures it on
 * the press, reports the press and each move, and the end. A second pointer is ignored
 * while one drags.
 */
export function onDrag(element: HTMLElement, handlers: DragHandlers): void {
  let pointer: number | null = null;
  const report = (e: PointerEvent, first: boolean): void => {
    const { u, v } = relativePosition(element, e);
    handlers.move(u, v, e, first);
  };
  element.addEventListener('pointerdown', (e) => {
    if (e.button !== 0 || pointer !== null || (handlers.canStart && !handlers.canStart(e))) return;
    pointer = e.pointerId;
    element.setPointerCapture(e.pointerId);
    report(e, true);
  });
  element.addEventListener('pointermove', (e) => {
    if (pointer === e.pointerId) report(e, false);
  });
  const finish = (e: PointerEvent): void => {
    if (pointer !== e.pointerId) return;
    pointer = null;
    handlers.end?.();
  };
  element.addEventListener('pointerup', finish);
  element.addEventListener('pointercancel', finish);
}

/** Options of a {@link DrawPad}; the brush is read at every stroke. */
export interface DrawPadOptions {
  /** Stroke colour (a CSS colour). */
  color: () => string;
  /** Stroke width in canvas pixels. */
  width: () => number;
  /** Fill of {@link DrawPad.clear}: a CSS colour, or null for transparent. Default null. */
  background?: string | null;
  /** Called when a stroke ends (pointer up). */
  onStrokeEnd?: () => void;
}

/** A canvas to draw on with the mouse, a pen or a finger. */
export class DrawPad {
  readonly canvas: HTMLCanvasElement;
  /** Its 2D context (read back often: `willReadFrequently`). */
  readonly ctx: CanvasRenderingContext2D;
  /** True once something was drawn on it since the last {@link DrawPad.clear}. */
  hasInk = false;
  private last: { x: number; y: number } | null = null;
  private readonly options: DrawPadOptions;

  constructor(canvas: HTMLCanvasElement, options: DrawPadOptions) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d', { willReadFrequently: true })!;
    this.options = options;
    onDrag(canvas, {
      move: (u, v, _e, first) => {
        if (first) this.last = null;
        this.stroke({ x: u * canvas.width, y: v * canvas.height });
      },
      end: () => {
        this.last = null;
        options.onStrokeEnd?.();
      },
    });
  }

  /** A line from the previous point of this stroke to `to` (a dot on the first). */
  private stroke(to: { x: number; y: number }): void {
    const ctx = this.ctx;
    const from = this.last ?? to;
    ctx.strokeStyle = this.options.color();
    ctx.lineWidth = this.options.width();
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x + (from === to ? 0.01 : 0), to.y);
    ctx.stroke();
    this.last = to;
    this.hasInk = true;
  }

  /** Empties the pad: filled with the background, or transparent. */
  clear(): void {
    const { canvas, ctx } = this;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (this.options.background) {
      ctx.fillStyle = this.options.background;
      ctx.fillRect(0, 0, canvas.width, canvas.height);
    }
    this.hasInk = false;
  }
}

/** A box of pixels, edges included. */
export interface PixelBox { top: number; left: number; bottom: number; right: number }

/**
 * The bounding box of the ink on a canvas, or null when there is none.
 *
 * @param ctx - The canvas's context.
 * @param isInk - Whether the RGBA pixel at byte offset `i` of `data` is ink.
 */
export function inkBounds(
  ctx: CanvasRenderingContext2D,
  isInk: (data: Uint8ClampedArray, i: number) => boolean,
): PixelBox | null {
  const { data, width, height } = ctx.getImageData(0, 0, ctx.canvas.width, ctx.canvas.height);
  let top = height, left = width, bottom = -1, right = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (isInk(data, 4 * (y * width + x))) {
        top = Math.min(top, y); bottom = Math.max(bottom, y);
        left = Math.min(left, x); right = Math.max(right, x);
      }
    }
  }
  return bottom < 0 ? null : { top, left, bottom, right };
}
