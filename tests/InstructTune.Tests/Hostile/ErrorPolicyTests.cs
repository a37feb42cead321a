using InstructTune.Cli;
using InstructTune.Common;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Hostile;

/// <summary>The one CLI error policy (CliErrors): input errors → one line, exit 2; defects → exit 70; stack only with --debug.</summary>
public class ErrorPolicyTests
{
    private static (int Code, string Text) Report(Exception e, bool debug = false)
    {
        var w = new StringWriter();
        int code = CliErrors.Report(e, "train", debug, w);
        return (code, w.ToString());
    }

    [Fact]
    public void InputErrorsAreOneLineWithExitCode2()
    {
        foreach (var e in new Exception[]
                 {
                     new ConfigException("override 'a.b=[': malformed"), new InputException("x.json:3: bad"),
                     new FileNotFoundException("f.json not found"), new IOException("No space left on device : 'ckpt/model.safetensors'"),
                     new InvalidDataException("model.safetensors: tensor 'w' truncated"), new AggregateException(new InputException("inner")),
                 })
        {
            var (code, text) = Report(e);
            Assert.Equal(CliErrors.BadInput, code);
            Assert.StartsWith("itune train: error: ", text);
            Assert.Single(text.TrimEnd().Split('\n'));
            Assert.DoesNotContain("   at ", text);
        }
    }

    [Fact]
    public void DefectsExit70WithoutStackUnlessDebug()
    {
        Exception boom;
        try { throw new NullReferenceException("boom"); } catch (Exception e) { boom = e; }
        var (code, text) = Report(boom);
        Assert.Equal(CliErrors.Internal, code);
        Assert.Contains("internal error (NullReferenceException): boom", text);
        Assert.DoesNotContain("   at ", text);
        (code, text) = Report(boom, debug: true);
        Assert.Equal(CliErrors.Internal, code);
        Assert.Contains("   at ", text);
    }

    [Fact]
    public void CliRunAppliesThePolicyAndDebugPrintsTheStack()
    {
        using (var scope = TestConsole.Capture())
        {
            var err = scope.Err;
            Assert.Equal(2, CliApp.Run(["init", "--config", "/nonexistent/config.json", "--out", Path.GetTempPath()]));
            Assert.Contains("itune init: error: ", err.ToString());
            Assert.Contains("/nonexistent/config.json", err.ToString());
            Assert.DoesNotContain("   at ", err.ToString());
            Assert.Equal(2, CliApp.Run(["init", "--config", "/nonexistent/config.json", "--out", Path.GetTempPath(), "--debug"]));
            Assert.Contains("   at ", err.ToString());
        }
    }
}
