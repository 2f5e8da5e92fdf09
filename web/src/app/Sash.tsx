// A draggable, keyboard-operable splitter.
import { useRef } from 'react';

export function Sash(props: {
  orientation: 'vertical' | 'horizontal';
  value: number;
  min: number;
  max: number;
  /** +1 when dragging right/down grows the value, -1 when it shrinks it. */
  direction: 1 | -1;
  onChange: (v: number) => void;
  label: string;
}) {
  const start = useRef<{ pos: number; value: number } | null>(null);
  const clamp = (v: number) => Math.round(Math.max(props.min, Math.min(props.max, v)));
  const vertical = props.orientation === 'vertical';
  return (
    <div
      className={`sash ${props.orientation}`}
      role="separator"
      aria-orientation={vertical ? 'vertical' : 'horizontal'}
      aria-label={props.label}
      aria-valuenow={props.value}
      aria-valuemin={props.min}
      aria-valuemax={props.max}
      tabIndex={0}
      onPointerDown={(e) => {
        e.preventDefault();
        (e.target as HTMLElement).setPointerCapture(e.pointerId);
        start.current = { pos: vertical ? e.clientX : e.clientY, value: props.value };
        document.body.classList.add(vertical ? 'resizing-x' : 'resizing-y');
      }}
      onPointerMove={(e) => {
        if (!start.current) return;
        const delta = (vertical ? e.clientX : e.clientY) - start.current.pos;
        props.onChange(clamp(start.current.value + delta * props.direction));
      }}
      onPointerUp={(e) => {
        start.current = null;
        (e.target as HTMLElement).releasePointerCapture(e.pointerId);
        document.body.classList.remove('resizing-x', 'resizing-y');
      }}
      onKeyDown={(e) => {
        const step = e.shiftKey ? 50 : 10;
        const grow = vertical ? 'ArrowRight' : 'ArrowDown';
        const shrink = vertical ? 'ArrowLeft' : 'ArrowUp';
        if (e.key === grow) {
          e.preventDefault();
          props.onChange(clamp(props.value + step * props.direction));
        } else if (e.key === shrink) {
          e.preventDefault();
          props.onChange(clamp(props.value - step * props.direction));
        }
      }}
    />
  );
}
