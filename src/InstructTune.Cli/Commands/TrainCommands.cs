// itune train | merge: the fine-tuning recipes (full, LoRA, QLoRA) from a YAML config with key=value
// overrides, resumable; and merging a PEFT adapter into a full checkpoint (issue 7).
using System.CommandLine;
using InstructTune.Checkpoints;
using InstructTune.Distributed;
using InstructTune.Models;
using InstructTune.Peft.Lora;
using InstructTune.Recipes;
using InstructTune.Tokenizers;
using InstructTune.Training.Checkpointing;
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

    /// <summary>
    /// A data-parallel rank (under mpirun with several ranks): an error is reported by the same policy, naming the
    /// rank, and then ends the whole job (MPI_Abort with the policy's exit code) instead of leaving the other ranks
    /// waiting in a collective. A one-process run lets errors escape to CliErrors as every command does.
    /// </summary>
    private static int RankGuard(Func<Action<ICommunicator>, int> body)
    {
        if (MpiJob.WorldSize == 1) return body(_ => { });
        ICommunicator comm = SingleProcess.Instance;
        int rc;
        try { rc = body(c => comm = c); }
        catch (Exception e)
        {
            rc = CliErrors.Report(e, $"train (rank {MpiJob.WorldRank}/{MpiJob.WorldSize})", debug: Environment.GetEnvironmentVariable("ITUNE_DEBUG") == "1");
        }
        if (comm.Size > 1)
        {
            if (rc != 0) comm.Abort(rc);
            comm.Dispose();
        }
        return rc;
    }

    private static Command Train()
    {
        var config = new Option<string?>("--config") { Description = "YAML config (configs/*.yaml); its keys are the snake_case TrainConfig fields" };
        var resume = new Option<string?>("--resume") { Description = "continue from a checkpoint folder, a run folder, or 'latest' (in checkpoint.output_dir)" };
        var overwrite = new Option<bool>("--overwrite") { Description = "replace the run already in checkpoint.output_dir (its checkpoints, metrics, run.json, exports)" };
        var resumeForce = new Option<bool>("--resume-force") { Description = "resume even when the base model, data or method differ from the run's run.json" };
        var overrides = new Argument<string[]>("overrides") { Description = "key=value overrides, e.g. training.learning_rate=1e-4 lora.rank=16 (`itune config schema` lists every key)", Arity = ArgumentArity.ZeroOrMore };
        var launcher = new Option<string?>("--launcher") { Description = "'mpi': re-run this command data-parallel under mpirun (also: start it with `mpirun -np N itune train …` yourself)" };
        var ranks = new Option<int>("--ranks") { Description = "with --launcher mpi: number of processes (ranks)", DefaultValueFactory = _ => 2 };
        var hostfile = new Option<string?>("--hostfile") { Description = "with --launcher mpi: Open MPI hostfile for a multi-node job" };
        var cmd = new Command("train", "Instruction fine-tuning (training.method): full, lora, qlora, ia3, prompt_tuning, prefix_tuning, iasft, ipeft, iapt, hint (lora.use_dora for DoRA); data-parallel under mpirun (distributed.*); feedback tuning with training.objective dpo, ipo, kto, orpo or simpo (docs/PREFERENCE.md)")
            { config, resume, overwrite, resumeForce, overrides, launcher, ranks, hostfile };
        cmd.SetAction(p => p.GetValue(launcher) is { } l
            ? MpiLauncher.Relaunch(l, p.GetValue(ranks), p.GetValue(hostfile), Environment.GetCommandLineArgs().Skip(1).ToList())
            : RankGuard(attach =>
        {
            var cfg = ConfigLoader.Load<TrainConfig>(p.GetValue(config), p.GetValue(overrides));
            var comm = MpiJob.Start(cfg.Distributed);
            attach(comm);
            int threads = MpiJob.ApplyThreads(cfg.Distributed);
            bool root = comm.Rank == 0;
            var yaml = ConfigLoader.ToYaml(cfg);
            if (root)
            {
                Console.Error.WriteLine("effective config:");
                Console.Error.WriteLine(yaml);
                if (comm.Size > 1)
                    Console.Error.WriteLine($"data parallel: {comm.Size} ranks × {threads} thread(s); global batch {cfg.Training.MicroBatchSize} × " +
                                            $"{cfg.Training.GradientAccumulationSteps} × {comm.Size} sequences; zero_stage {cfg.Distributed.ZeroStage}");
            }
            if (p.GetValue(overwrite) && p.GetValue(resume) != null) throw new ArgumentException("--overwrite and --resume exclude each other");
            using var recipe = FineTuneRecipe.Setup(cfg, p.GetValue(resume), say: root ? s => Console.Error.WriteLine(s) : null, comm,
                new RunStartOptions(p.GetValue(overwrite), p.GetValue(resumeForce)));
            if (recipe.Trainer.Zero is { } zero)
                Console.Error.WriteLine($"rank {comm.Rank}/{comm.Size}: ZeRO-1 holds AdamW moments of {zero.OwnedValues:N0} of {zero.TotalValues:N0} " +
                                        $"trainable values ({zero.OwnedValues * 8 / 1048576.0:F1} MiB instead of {zero.TotalValues * 8 / 1048576.0:F1} MiB)");
            // Test hook: stretch every checkpoint write so a test can SIGKILL the process in the middle of one.
            if (int.TryParse(Environment.GetEnvironmentVariable("ITUNE_TEST_CHECKPOINT_SLEEP_MS"), out var sleepMs) && sleepMs > 0)
                FineTuneRecipe.OnCheckpointWriting = _ => Thread.Sleep(sleepMs);
            if (root)
            {
                Console.Error.WriteLine($"training {cfg.Training.Method}: step {recipe.Trainer.Step} → {recipe.TotalSteps}");
                Console.Error.WriteLine(recipe.Footprint());
            }
            TrainingSummary summary;
            if (root && TrainingReporter.Interactive && cfg.Logging.Progress)
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
            else summary = recipe.Train(quiet: !root);
            if (comm.Size > 1)
                Console.Error.WriteLine($"rank {comm.Rank}/{comm.Size}: {recipe.Trainer.AllreduceSeconds / Math.Max(1, summary.Steps) * 1000:F1} ms " +
                                        $"gradient allreduce per step, {comm.CollectiveSeconds:F1} s in collectives in all");
            if (root)
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
        var adapter = new Option<string>("--adapter") { Description = "adapter folder (PEFT layout: LoRA, DoRA, IA3)", Required = true };
        var output = new Option<string>("--out") { Description = "folder for the merged checkpoint", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "float32 | bfloat16 (default: the base's torch_dtype)" };
        var cmd = new Command("merge", "Merge a PEFT adapter (LoRA, DoRA, IA3, IaSFT sparse delta) into its base and write a full Hugging Face checkpoint") { model, adapter, output, dtype };
        cmd.SetAction(p => Guard(() =>
        {
            var baseDir = p.GetValue(model)!;
            // Marker tokens trained under LoRA/QLoRA (added_tokens.safetensors): the merged model gets their rows and
            // the adapter's tokenizer and prompt format (instructtune.json records the markers).
            var added = Models.InstructionAware.TrainableTokenRows.TryLoad(p.GetValue(adapter)!, LlamaConfig.Load(baseDir).HiddenSize);
            var m = added is { } a ? LlamaCheckpoint.Load(baseDir, a.FirstId + a.Count) : LlamaCheckpoint.Load(baseDir);
            if (added is { } rows)
            {
                if (rows.FirstId + rows.Count != m.Config.VocabSize || rows.FirstId != LlamaConfig.Load(baseDir).VocabSize)
                    throw new InvalidDataException($"{p.GetValue(adapter)}: {Models.InstructionAware.TrainableTokenRows.FileName} starts at id {rows.FirstId}; the base's vocab_size is {LlamaConfig.Load(baseDir).VocabSize}");
                int D = m.Config.HiddenSize;
                var e = m.Backbone.EmbedTokens.Weight;
                rows.Embed.CopyTo(e.Span.Slice(rows.FirstId * D, rows.Count * D));
                if (rows.Head != null) rows.Head.CopyTo(m.GetParameter("lm_head.weight").Span.Slice(rows.FirstId * D, rows.Count * D));
            }
            var type = Peft.PeftRegistry.LoadInto(m, p.GetValue(adapter)!);
            Peft.PeftRegistry.MergeAndUnload(m);
            // Instruction-aware variants trained beside the adapter go with the merged model (saved by LlamaCheckpoint.Save).
            bool aware = File.Exists(Path.Combine(p.GetValue(adapter)!, Models.InstructionAware.InstructionAwareFile.FileName));
            if (aware) Models.InstructionAware.InstructionAwareFile.LoadInto(m, p.GetValue(adapter)!);
            var dt = LlamaCheckpoint.ParseDtype(p.GetValue(dtype) ?? m.Config.TorchDtype);
            var outDir = p.GetValue(output)!;
            LlamaCheckpoint.Save(m, outDir, dt);
            foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json", "generation_config.json" })
                if (File.Exists(Path.Combine(baseDir, f))) File.Copy(Path.Combine(baseDir, f), Path.Combine(outDir, f), overwrite: true);
            if (added != null)
                foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", Data.Templating.PromptFormatFile.FileName })
                    if (File.Exists(Path.Combine(p.GetValue(adapter)!, f))) File.Copy(Path.Combine(p.GetValue(adapter)!, f), Path.Combine(outDir, f), overwrite: true);
            if (aware) Models.InstructionAware.InstructionAwareFile.Record(m, outDir);
            Console.Error.WriteLine($"merged {type} adapter {p.GetValue(adapter)} into {baseDir} → {outDir}");
            return 0;
        }));
        return cmd;
    }
}
