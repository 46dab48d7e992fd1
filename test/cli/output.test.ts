import { Progress, formatJson, type CliIo } from '../../cli/output';

function io(tty: boolean): CliIo & { err: () => string } {
  let err = '';
  return {
    stdout: { write: () => true },
    stderr: { write: (text: string) => (err += text) },
    stderrIsTTY: tty,
    err: () => err,
  };
}

describe('Progress: one redrawn line on a terminal, nothing elsewhere', () => {
  test('Given a terminal, when progress is updated twice and done, then each update clears the line and done clears it last', () => {
    const terminal = io(true);
    const progress = new Progress(terminal, true);
    progress.update('hasher: 1/4 requests');
    progress.update('hasher: 4/4');
    progress.done();
    progress.done();
    expect(terminal.err()).toBe('\r\x1b[2Khasher: 1/4 requests\r\x1b[2Khasher: 4/4\r\x1b[2K');
  });

  test.each([
    ['not a terminal (a log, a pipe)', false, true],
    ['--json', true, false],
  ])('Given %s, when progress is updated, then nothing is written', (_name, tty, enabled) => {
    const stream = io(tty);
    const progress = new Progress(stream, enabled);
    progress.update('listing…');
    progress.done();
    expect(stream.err()).toBe('');
  });
});

describe('formatJson', () => {
  test('Given undefined fields, when formatted, then they are null (a script sees every key)', () => {
    expect(formatJson({ a: undefined, b: [1] })).toBe('{\n  "a": null,\n  "b": [\n    1\n  ]\n}\n');
  });
});
