using System.Text.Json;
using InstructTune.Cli;
using InstructTune.Evaluation.Judge;
using InstructTune.Evaluation.Metrics;

namespace InstructTune.Tests.Evaluation.Judge;

[Collection("Console")]
public class EvalJudgeCliTests
{
    private static (int rc, string stdout, string stderr) Run(params string[] args) => CliCapture.Run(args);

    [Fact]
    public void JudgesThroughTheServerWithAYamlConfigAndNeverPrintsTheKey()
    {
        using var server = new FakeOpenAiServer();
        var dir = Directory.CreateTempSubdirectory("itune-judge-cli-");
        const string secret = "sk-cli-secret-123";
        Environment.SetEnvironmentVariable("ITUNE_TEST_JUDGE_KEY", secret);
        try
        {
            var config = Path.Combine(dir.FullName, "judge.yaml");
            File.WriteAllText(config, $"base_url: {server.BaseUrl}\nmodel: judge-test\napi_key_env: ITUNE_TEST_JUDGE_KEY\nmax_attempts: 2\nattempt_timeout_s: 1\nbase_delay_s: 0.05\n");
            var input = Path.Combine(dir.FullName, "items.jsonl");
            File.WriteAllLines(input,
            [
                """{"id": "a", "instruction": "Say hi", "response": "hi [[case:ok-9]]"}""",
                """{"id": "b", "instruction": "Say hi", "response": "hi [[case:error500-always]]"}""",
            ]);
            var outDir = Path.Combine(dir.FullName, "out");
            var (rc, stdout, stderr) = Run("eval", "judge", "--input", input, "--out", outDir, "--config", config);
            Assert.Equal(1, rc);   // one judgement failed
            Assert.Contains("2 judgements: 1 made, 1 failed, mean IRS 9.00", stdout);
            var lines = File.ReadAllLines(Path.Combine(outDir, "judgements.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            Assert.Equal(9, lines[0].GetProperty("score").GetDouble());
            Assert.Contains("HTTP 500", lines[1].GetProperty("error").GetString());
            Assert.Equal(2, lines[1].GetProperty("attempts").GetInt32());
            Assert.DoesNotContain(secret, stdout + stderr);
            Assert.Contains($"Bearer {secret}", server.Authorizations);
            Assert.True(File.Exists(Path.Combine(outDir, "judge_cache.jsonl")));
        }
        finally
        {
            Environment.SetEnvironmentVariable("ITUNE_TEST_JUDGE_KEY", null);
            dir.Delete(true);
        }
    }

    [Fact]
    public void ConfigErrorsNameLineAndKey()
    {
        var dir = Directory.CreateTempSubdirectory("itune-judge-cfg-");
        try
        {
            var path = Path.Combine(dir.FullName, "judge.yaml");
            File.WriteAllText(path, "model: m\nmax_attempts: zero\n");
            var ex = Assert.Throws<EvalInputException>(() => JudgeConfigFile.Load(path, _ => null));
            Assert.Contains("judge.yaml:2: config key 'max_attempts'", ex.Message);
            File.WriteAllText(path, "model: m\ntemperature: 0\n");
            ex = Assert.Throws<EvalInputException>(() => JudgeConfigFile.Load(path, _ => null));
            Assert.Contains("judge.yaml:2: unknown config key 'temperature'", ex.Message);
            File.WriteAllText(path, "model: m\ncache: c.jsonl\n");
            var cfg = JudgeConfigFile.Load(path, k => k == "OPENAI_BASE_URL" ? "http://h/v1" : null);
            Assert.Equal("http://h/v1", cfg.BaseUrl);
            Assert.Equal(Path.Combine(dir.FullName, "c.jsonl"), cfg.CachePath);
        }
        finally { dir.Delete(true); }
    }
}
