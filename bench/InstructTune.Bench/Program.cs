// Benchmarks: each prints human lines and one JSON line per result, with a peer measured in the same run.
// Usage: dotnet run -c Release --project bench/InstructTune.Bench -- <bench> [options]
using InstructTune.Bench;

return BenchCatalog.Run(args);
