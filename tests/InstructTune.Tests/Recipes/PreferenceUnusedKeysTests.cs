// preference.* keys that the chosen training.objective's loss never reads are refused naming the key (they were
// accepted and ignored: e.g. simpo_gamma under dpo, desirable_weight under dpo, anything under sft).
using InstructTune.Recipes;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Recipes;

public class PreferenceUnusedKeysTests
{
    private static TrainConfig With(params string[] kv) => ConfigLoader.LoadFromString<TrainConfig>("", kv);

    [Theory]
    [InlineData("sft", "preference.beta=0.5", "preference.beta")]
    [InlineData("sft", "preference.skip_invalid_records=true", "preference.skip_invalid_records")]
    [InlineData("dpo", "preference.simpo_gamma=1.0", "preference.simpo_gamma")]
    [InlineData("dpo", "preference.cpo_alpha=1.0", "preference.cpo_alpha")]
    [InlineData("dpo", "preference.desirable_weight=2", "preference.desirable_weight")]
    [InlineData("ipo", "preference.label_smoothing=0.1", "preference.label_smoothing")]
    [InlineData("orpo", "preference.label_smoothing=0.1", "preference.label_smoothing")]
    [InlineData("kto", "preference.label_smoothing=0.1", "preference.label_smoothing")]
    [InlineData("orpo", "preference.precompute_ref_log_probs=true", "preference.precompute_ref_log_probs")]
    [InlineData("simpo", "preference.undesirable_weight=2", "preference.undesirable_weight")]
    [InlineData("simpo", "preference.score_threshold=0.7", "preference.score_threshold")]
    [InlineData("kto", "preference.loss_type=hinge", "preference.loss_type")]
    public void A_key_the_objective_does_not_read_is_refused(string objective, string kv, string key)
    {
        var e = Assert.Throws<ConfigException>(() => FineTuneRecipe.Validate(With($"training.objective={objective}", kv)));
        Assert.Contains(key, e.Message);
        Assert.Contains("not used", e.Message);
    }

    [Fact]
    public void Hinge_dpo_refuses_label_smoothing()
    {
        var e = Assert.Throws<ConfigException>(() => FineTuneRecipe.Validate(With("training.objective=dpo", "preference.loss_type=hinge", "preference.label_smoothing=0.1")));
        Assert.Contains("preference.label_smoothing", e.Message);
    }

    [Theory]
    [InlineData("dpo", "preference.label_smoothing=0.1")]
    [InlineData("simpo", "preference.label_smoothing=0.1")]
    [InlineData("simpo", "preference.cpo_alpha=1")]
    [InlineData("simpo", "preference.simpo_gamma=1")]
    [InlineData("kto", "preference.desirable_weight=1.5")]
    [InlineData("kto", "preference.score_threshold=0.7")]
    [InlineData("ipo", "preference.precompute_ref_log_probs=true")]
    [InlineData("orpo", "preference.beta=0.2")]
    [InlineData("reward", "preference.center_rewards_coefficient=0.01")]
    [InlineData("sft", "training.learning_rate=1e-4")]
    public void A_key_the_objective_reads_is_accepted(string objective, string kv) =>
        FineTuneRecipe.Validate(With($"training.objective={objective}", kv));
}

public class PreferenceDataKeysTests
{
    private static TrainConfig With(params string[] kv) => ConfigLoader.LoadFromString<TrainConfig>("", kv);

    [Theory]
    [InlineData("data.format=sharegpt", "data.format")]
    [InlineData("data.system_prompt=Be brief.", "data.system_prompt")]
    [InlineData("data.dedup=off", "data.dedup")]
    [InlineData("data.skip_invalid=true", "data.skip_invalid")]
    [InlineData("data.too_long=drop", "data.too_long")]
    public void Sft_data_keys_are_refused_under_a_feedback_objective(string kv, string key)
    {
        var e = Assert.Throws<ConfigException>(() => FineTuneRecipe.Validate(With("training.objective=dpo", kv)));
        Assert.Contains(key, e.Message);
        FineTuneRecipe.Validate(With("training.objective=sft", kv));   // SFT reads it
    }

    [Fact]
    public void Dataset_mixtures_are_refused_under_a_feedback_objective()
    {
        var c = ConfigLoader.LoadFromString<TrainConfig>("training:\n  objective: kto\ndata:\n  datasets:\n    - path: a.jsonl\n    - path: b.jsonl\n");
        Assert.Contains("data.datasets", Assert.Throws<ConfigException>(() => FineTuneRecipe.Validate(c)).Message);
    }

    [Fact]
    public void The_keys_feedback_loading_reads_are_accepted() =>
        FineTuneRecipe.Validate(With("training.objective=dpo", "data.template=chatml", "data.max_seq_len=128", "data.validation_fraction=0.1", "data.pack=false"));
}
