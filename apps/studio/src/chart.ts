import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/**
 * The live training chart: loss at every step (left axis) and validation accuracy at each
 * evaluation (right axis, 0-1). uPlot wants one x array with a value or null per series.
 */
export class TrainingChart {
  private readonly steps: number[] = [];
  private readonly losses: (number | null)[] = [];
  private readonly accuracies: (number | null)[] = [];
  private readonly plot: uPlot;

  constructor(container: HTMLElement) {
    this.plot = new uPlot(
      {
        width: Math.max(320, container.clientWidth || 640),
        height: 260,
        scales: { x: { time: false }, acc: { range: [0, 1] } },
        axes: [
          { label: 'step' },
          { label: 'training loss' },
          { scale: 'acc', side: 1, label: 'validation accuracy', grid: { show: false } },
        ],
        series: [
          {},
          { label: 'training loss', stroke: '#1f77b4', width: 1.5, spanGaps: true },
          { label: 'validation accuracy', stroke: '#d62728', width: 2, scale: 'acc', spanGaps: true, points: { show: true, size: 6 } },
        ],
      },
      [[], [], []],
      container,
    );
    new ResizeObserver(() => this.plot.setSize({ width: Math.max(320, container.clientWidth), height: 260 })).observe(container);
  }

  reset(): void {
    this.steps.length = this.losses.length = this.accuracies.length = 0;
    this.redraw();
  }

  addLoss(step: number, loss: number): void {
    this.point(step, loss, null);
  }

  addAccuracy(step: number, accuracy: number): void {
    const i = this.steps.lastIndexOf(step);
    if (i >= 0) this.accuracies[i] = accuracy;
    else this.point(step, null, accuracy);
    this.redraw();
  }

  private point(step: number, loss: number | null, accuracy: number | null): void {
    this.steps.push(step);
    this.losses.push(loss);
    this.accuracies.push(accuracy);
    this.redraw();
  }

  private redraw(): void {
    this.plot.setData([this.steps, this.losses, this.accuracies] as uPlot.AlignedData);
  }
}
