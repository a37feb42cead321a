// itune train | merge: the fine-tuning recipes (full, LoRA, QLoRA) from a YAML config with key=value
// overrides, resumable; and merging a PEFT adapter into a full checkpoint (issue 7).
using System.CommandLine;
using InstructTune.Checkpoints;
using InstructTune.Models;
using InstructTune.Peft.Lora;
using InstructTune.Recipes;
using InstructTune.Tokenizers;
using InstructTune.Training.Config;
using InstructTune.Training.Loop;
using Spectre.Console;

namespace InstructTune.Cli.Commands;

public static class TrainCommands
{
    public static IEnumerable<Command> Create()
    {
        yield return Train();
        yield return Merge();
    }

    // Errors escape to the one CLI policy (CliErrors): bad input → exit 2, a diverged run → exit 3.
    private static int Guard(Func<int> body) => body();

    private static Command Train()
    {
        var config = new Option<string?>("--config") { Description = "YAML config (configs/*.yaml); its keys are the snake_case TrainConfig fields" };
        var resume = new Option<string?>("--resume") { Description = "continue from a checkpoint folder, a run folder, or 'latest' (in checkpoint.output_dir)" };
        var overrides = new Argument<string[]>("overrides") { Description = "key=value overrides, e.g. training.learning_rate=1e-4 lora.rank=16", Arity = ArgumentArity.ZeroOrMore };
        var cmd = new Command("train", "Instruction fine-tuning: full, LoRA or QLoRA (training.method)") { config, resume, overrides };
        cmd.SetAction(p => Guard(() =>
        {
            var cfg = ConfigLoader.Load<TrainConfig>(p.GetValue(config), p.GetValue(overrides));
            var yaml = ConfigLoader.ToYaml(cfg);
            Console.Error.WriteLine("effective config:");
            Console.Error.WriteLine(yaml);
            var recipe = FineTuneRecipe.Setup(cfg, p.GetValue(resume), say: s => Console.Error.WriteLine(s));
            // Test hook: stretch every checkpoint write so a test can SIGKILL the process in the middle of one.
            if (int.TryParse(Environment.GetEnvironmentVariable("ITUNE_TEST_CHECKPOINT_SLEEP_MS"), out var sleepMs) && sleepMs > 0)
                FineTuneRecipe.OnCheckpointWriting = _ => Thread.Sleep(sleepMs);
            Console.Error.WriteLine($"training {cfg.Training.Method}: step {recipe.Trainer.Step} → {recipe.TotalSteps}, " +
                                    $"{recipe.Trainer.Trainable.Sum(t => (long)t.Parameter.Length):N0} trainable parameters");
            TrainingSummary summary;
            if (TrainingReporter.Interactive && cfg.Logging.Progress)
            {
                TrainingSummary? result = null;
                AnsiConsole.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask("training", maxValue: recipe.TotalSteps);
                        task.Value = recipe.Trainer.Step;
                        result = recipe.Train(r =>
                        {
                            task.Value = r.Step;
                            task.Description = FormattableString.Invariant($"loss {r.Loss:F4} lr {r.LearningRate:E2} {r.Tokens / Math.Max(1e-9, r.Seconds):F0} tok/s");
                        }, quiet: true);
                    });
                summary = result!;
            }
            else summary = recipe.Train();
            Console.WriteLine($"done: {summary.Steps} steps, final loss {summary.FinalLoss:F4}" +
                              (summary.ValidationLoss is { } v ? $", validation loss {v:F4}" : "") +
                              $"; exported to {summary.ExportDir}; checkpoints in {summary.RunDir}");
            return 0;
        }));
        return cmd;
    }

    private static Command Merge()
    {
        var model = new Option<string>("--model") { Description = "base checkpoint folder (HF layout)", Required = true };
        var adapter = new Option<string>("--adapter") { Description = "LoRA adapter folder (PEFT layout)", Required = true };
        var output = new Option<string>("--out") { Description = "folder for the merged checkpoint", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "float32 | bfloat16 (default: the base's torch_dtype)" };
        var cmd = new Command("merge", "Merge a LoRA adapter into its base and write a full Hugging Face checkpoint") { model, adapter, output, dtype };
        cmd.SetAction(p => Guard(() =>
        {
            var baseDir = p.GetValue(model)!;
            var m = LlamaCheckpoint.Load(baseDir);
            LoraAdapterIO.LoadInto(m, p.GetValue(adapter)!);
            LoraInjector.MergeAndUnload(m);
            var dt = LlamaCheckpoint.ParseDtype(p.GetValue(dtype) ?? m.Config.TorchDtype);
            var outDir = p.GetValue(output)!;
            LlamaCheckpoint.Save(m, outDir, dt);
            foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json", "generation_config.json" })
                if (File.Exists(Path.Combine(baseDir, f))) File.Copy(Path.Combine(baseDir, f), Path.Combine(outDir, f), overwrite: true);
            Console.Error.WriteLine($"merged {p.GetValue(adapter)} into {baseDir} → {outDir}");
            return 0;
        }));
        return cmd;
    }
}
