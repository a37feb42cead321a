namespace InstructTune.Tests.Hostile;

/// <summary>Hostile configs and overrides through <c>itune train</c> and <c>itune prepare</c>.</summary>
[Collection("Probes")]
public class ConfigProbeTests
{
    private static string Write(string name, string text)
    {
        var path = Path.Combine(HostileWorkspace.NewFolder("cfg"), name);
        File.WriteAllText(path, text);
        return path;
    }

    [Theory]
    [InlineData("flow")]
    [InlineData("block")]
    [InlineData("mapping")]
    public void YamlNested50000DeepIsRefusedNamingTheLine(string style)
    {
        var text = style switch
        {
            "flow" => "training: " + new string('[', 50_000) + new string(']', 50_000) + "\n",
            "block" => string.Concat(Enumerable.Repeat("- ", 50_000)) + "x\n",
            _ => string.Concat(Enumerable.Repeat("{a: ", 50_000)) + "1" + new string('}', 50_000) + "\n",
        };
        var path = Write("deep.yaml", text);
        Probe.AssertClearError(Probe.Run(["train", "--config", path]), "deep.yaml:1", "deeper than 64");
        Probe.AssertClearError(Probe.Run(["prepare", "--config", path]), "deep.yaml:1", "deeper than 64");
    }

    [Fact]
    public void UnparsableOverrideIsNamed()
    {
        Probe.AssertClearError(Probe.Run(["train", "lora.target_modules=[q_proj"]), "override 'lora.target_modules=[q_proj'");
    }
}
