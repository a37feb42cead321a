using InstructTune.Recipes.Quickstart;
using Xunit;

namespace InstructTune.Tests.Recipes;

public sealed class QuickstartOptionsTests : IDisposable
{
    private readonly string _file = Path.Combine(Path.GetTempPath(), "itune-qs-opts-" + Guid.NewGuid().ToString("N") + ".json");

    public void Dispose() { if (File.Exists(_file)) File.Delete(_file); }

    [Fact]
    public void OverlayChangesOnlyNamedProperties()
    {
        File.WriteAllText(_file, """{"TuneSteps": 7, "LoraAlpha": 3.5}""");
        var o = QuickstartOptions.Overlay(QuickstartOptions.Tiny, _file);
        Assert.Equal(7, o.TuneSteps);
        Assert.Equal(3.5, o.LoraAlpha);
        Assert.Equal(QuickstartOptions.Tiny with { TuneSteps = 7, LoraAlpha = 3.5 }, o);
    }

    [Theory]
    [InlineData("""{"TuneStep": 7}""", "unknown quickstart option 'TuneStep'")]
    [InlineData("""{"TuneSteps": "many"}""", "TuneSteps")]
    [InlineData("""[1]""", "expected a JSON object")]
    public void OverlayRefusesBadInputNamingFileAndKey(string json, string expected)
    {
        File.WriteAllText(_file, json);
        var e = Assert.Throws<InvalidDataException>(() => QuickstartOptions.Overlay(QuickstartOptions.Default, _file));
        Assert.Contains(_file, e.Message);
        Assert.Contains(expected, e.Message);
    }
}
