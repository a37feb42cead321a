using System.Globalization;
using InstructTune.Training.Logging;
using Spectre.Console;

namespace InstructTune.Training.Loop;

/// <summary>
/// Where a run's progress goes: metrics.jsonl and TensorBoard events in the run folder (always), and the
/// console — a Spectre.Console progress bar with loss, learning rate, tokens/s and ETA when the terminal is
/// interactive, one plain line per logged step when output is redirected (CI, files).
/// </summary>
public sealed class TrainingReporter : IDisposable
{
    private readonly JsonlMetricsLogger _jsonl;
    private readonly TensorBoardWriter? _tensorBoard;
    private readonly int _logEvery;
    private readonly bool _quiet;
    private double _tokens, _seconds;

    public TrainingReporter(string runDir, int logEvery, bool tensorBoard, bool quiet = false)
    {
        Directory.CreateDirectory(runDir);
        _jsonl = new JsonlMetricsLogger(Path.Combine(runDir, "metrics.jsonl"));
        _tensorBoard = tensorBoard ? new TensorBoardWriter(Path.Combine(runDir, "tensorboard")) : null;
        _logEvery = Math.Max(1, logEvery);
        _quiet = quiet;
    }

    public static bool Interactive => AnsiConsole.Profile.Capabilities.Interactive && !Console.IsOutputRedirected;

    public void Log(StepResult r, int totalSteps, IReadOnlyDictionary<string, double>? extra = null)
    {
        _tokens += r.Tokens;
        _seconds += r.Seconds;
        if (r.Step % _logEvery != 0 && r.Step != totalSteps && extra == null) return;
        var metrics = new Dictionary<string, double>
        {
            ["loss"] = r.Loss, ["grad_norm"] = r.GradNorm,
            ["lr"] = r.LearningRate, ["tokens_per_s"] = r.Tokens / Math.Max(1e-9, r.Seconds),
        };
        if (r.Metrics == null) metrics["instruction_loss"] = r.InstructionLoss;
        else foreach (var (k, v) in r.Metrics) metrics[k] = v;   // a feedback objective's own (TRL's names)
        if (r.NextTokenLoss > 0) metrics["next_token_loss"] = r.NextTokenLoss;
        if (r.Verdict != StepVerdict.Apply) metrics["skipped"] = 1;
        if (extra != null) foreach (var (k, v) in extra) metrics[k] = v;
        _jsonl.Log(r.Step, metrics);
        if (_tensorBoard != null)
            foreach (var (k, v) in metrics) _tensorBoard.AddScalar((k.StartsWith("eval") ? "" : "train/") + k, (float)v, r.Step);
        if (!_quiet && !Interactive)
        {
            var line = FormattableString.Invariant(
                $"step {r.Step}/{totalSteps}  loss {r.Loss:F4}  lr {r.LearningRate:E2}  tok/s {_tokens / Math.Max(1e-9, _seconds):F0}  eta {Eta(r.Step, totalSteps)}");
            if (r.SkipReason != null && r.Verdict != StepVerdict.Apply) line += $"  SKIPPED: {r.SkipReason}";
            if (extra != null) line += "  " + string.Join("  ", extra.Select(e => FormattableString.Invariant($"{e.Key} {e.Value:F4}")));
            Console.WriteLine(line);
        }
    }

    public string Eta(int step, int total)
    {
        if (step == 0) return "?";
        var remaining = TimeSpan.FromSeconds(_seconds / step * (total - step));
        return remaining.ToString(remaining.TotalHours >= 1 ? @"h\:mm\:ss" : @"m\:ss", CultureInfo.InvariantCulture);
    }

    public string Describe(StepResult r, int totalSteps) => string.Create(CultureInfo.InvariantCulture,
        $"loss {r.Loss:F4}  lr {r.LearningRate:E2}  {_tokens / Math.Max(1e-9, _seconds):F0} tok/s  ETA {Eta(r.Step, totalSteps)}");

    public void Dispose()
    {
        _jsonl.Dispose();
        _tensorBoard?.Dispose();
    }
}
