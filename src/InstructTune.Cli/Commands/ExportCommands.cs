// itune export gguf: a checkpoint (+ LoRA merged, or the adapter alone) as a GGUF file for llama.cpp, Ollama and
// LM Studio (issue 14). The format work lives in the library (Export/Gguf/).
using System.CommandLine;
using InstructTune.Export.Gguf;

namespace InstructTune.Cli.Commands;

public static class ExportCommands
{
    public static Command Create()
    {
        var export = new Command("export", "Write a model in another runtime's format");
        var model = new Option<string>("--model") { Description = "checkpoint folder (Hugging Face layout, with its tokenizer)", Required = true };
        var adapter = new Option<string?>("--adapter") { Description = "LoRA adapter folder (PEFT layout): merged in, or exported alone with --adapter-only" };
        var output = new Option<string>("--out") { Description = "GGUF file to write (atomically)", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "f32 | f16 | bf16 | q8_0 (matrices; norms and biases stay f32)", DefaultValueFactory = _ => "f16" };
        var adapterOnly = new Option<bool>("--adapter-only") { Description = "write the adapter as a GGUF LoRA adapter (llama.cpp --lora) instead of merging it" };
        var gguf = new Command("gguf", "GGUF v3 for llama.cpp / Ollama / LM Studio (llama, mistral, qwen2)") { model, adapter, output, dtype, adapterOnly };
        gguf.SetAction(p =>
        {
            var report = GgufExporter.Export(new GgufExportOptions(p.GetValue(model)!, p.GetValue(output)!,
                GgufExporter.ParseDType(p.GetValue(dtype)!), p.GetValue(adapter), p.GetValue(adapterOnly)));
            foreach (var n in report.Notes) Console.Error.WriteLine($"note: {n}");
            Console.Error.WriteLine($"wrote {p.GetValue(output)} ({report.Architecture}, {report.Tensors} tensors: "
                + string.Join(", ", report.TensorTypes.Select(kv => $"{kv.Value} {kv.Key}")) + $", {report.Bytes / 1e6:F1} MB)");
            return 0;
        });
        export.Subcommands.Add(gguf);
        return export;
    }
}
