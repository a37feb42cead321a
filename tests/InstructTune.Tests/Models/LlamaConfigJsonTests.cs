// config.json parsing: the keys of the issue, refusals that name the key, and a write → read round trip.
using InstructTune.Models;

namespace InstructTune.Tests.Models;

public class LlamaConfigJsonTests
{
    private const string Base = """
        {"model_type":"llama","architectures":["LlamaForCausalLM"],"vocab_size":32000,"hidden_size":2048,
         "intermediate_size":5632,"num_hidden_layers":22,"num_attention_heads":32,"num_key_value_heads":4,
         "rms_norm_eps":1e-5,"rope_theta":10000.0,"max_position_embeddings":2048,"tie_word_embeddings":false,
         "bos_token_id":1,"eos_token_id":2,"torch_dtype":"bfloat16","hidden_act":"silu"}
        """;

    private static string With(string extra)
    {
        var json = System.Text.Json.Nodes.JsonNode.Parse(Base)!.AsObject();
        foreach (var (k, v) in System.Text.Json.Nodes.JsonNode.Parse("{" + extra + "}")!.AsObject()) json[k] = v?.DeepClone();
        return json.ToJsonString();
    }

    [Fact]
    public void Duplicate_keys_are_bad_input()
    {
        var e = Assert.Throws<InvalidDataException>(() => LlamaConfig.FromJson(Base.TrimEnd().TrimEnd('}') + ",\"eos_token_id\":3}"));
        Assert.Contains("eos_token_id", e.Message);
    }

    [Fact]
    public void TinyLlama_shapes_are_read()
    {
        var c = LlamaConfig.FromJson(Base);
        Assert.Equal(("llama", 32000, 2048, 5632, 22, 32, 4, 64), (c.ModelType, c.VocabSize, c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim));
        Assert.Equal(1e-5, c.RmsNormEps);
        Assert.Equal([2], c.EosTokenIds);
        Assert.Equal("bfloat16", c.TorchDtype);
        Assert.Null(c.SlidingWindow);
        Assert.Null(c.RopeScaling);
    }

    [Fact]
    public void Fixture_configs_parse_with_their_conventions()
    {
        var q = LlamaConfig.Load(GoldenFixture.Dir("qwen2_tied_f32"));
        Assert.True(q.QkvBias);
        Assert.True(q.TieWordEmbeddings);
        Assert.Null(q.SlidingWindow);          // use_sliding_window false: ignored
        Assert.Equal([2, 3], q.EosTokenIds);
        var m = LlamaConfig.Load(GoldenFixture.Dir("mistral_sw_bf16"));
        Assert.Equal(5, m.SlidingWindow);
        var l3 = LlamaConfig.Load(GoldenFixture.Dir("llama3_rope_f32"));
        Assert.Equal(24, l3.HeadDim);
        Assert.Equal(new RopeScaling("llama3", 8, 1, 4, 16), l3.RopeScaling);
    }

    [Theory]
    [InlineData("hidden_size")]
    [InlineData("vocab_size")]
    [InlineData("intermediate_size")]
    [InlineData("num_hidden_layers")]
    [InlineData("num_attention_heads")]
    [InlineData("model_type")]
    public void Missing_required_key_is_named(string key)
    {
        var json = System.Text.Json.Nodes.JsonNode.Parse(Base)!.AsObject();
        json.Remove(key);
        var e = Assert.Throws<InvalidDataException>(() => LlamaConfig.FromJson(json.ToJsonString(), "cfg.json"));
        Assert.Contains(key, e.Message);
        Assert.Contains("cfg.json", e.Message);
    }

    [Theory]
    [InlineData("\"model_type\":\"gpt2\"", "model_type")]
    [InlineData("\"hidden_act\":\"gelu\"", "hidden_act")]
    [InlineData("\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4}", "rope_scaling.rope_type")]
    [InlineData("\"rope_scaling\":{\"rope_type\":\"linear\"}", "rope_scaling.factor")]
    [InlineData("\"hidden_size\":\"big\"", "hidden_size")]
    [InlineData("\"torch_dtype\":\"int8\"", "torch_dtype")]
    [InlineData("\"num_key_value_heads\":5", "num_key_value_heads")]
    [InlineData("\"sliding_window\":4096", "sliding_window")]
    [InlineData("\"layer_types\":[\"full_attention\",\"sliding_attention\"]", "layer_types")]
    [InlineData("\"quantization_config\":{\"quant_method\":\"gptq\"}", "quantization_config")]
    public void Unsupported_options_are_refused_naming_the_key(string entry, string key)
    {
        // Later duplicate keys override earlier ones in JsonNode, so append the bad entry after removing the original.
        var bad = System.Text.Json.Nodes.JsonNode.Parse("{" + entry + "}")!.AsObject();
        var json = System.Text.Json.Nodes.JsonNode.Parse(Base)!.AsObject();
        foreach (var (k, v) in bad) json[k] = v?.DeepClone();
        var e = Assert.Throws<InvalidDataException>(() => LlamaConfig.FromJson(json.ToJsonString()));
        Assert.Contains(key, e.Message);
    }

    [Fact]
    public void Rope_parameters_object_and_linear_scaling_and_eos_list()
    {
        var c = LlamaConfig.FromJson(With("\"rope_parameters\":{\"rope_type\":\"linear\",\"factor\":2.0,\"rope_theta\":500000.0},\"eos_token_id\":[7,8]"));
        Assert.Equal(500000.0, c.RopeTheta);
        Assert.Equal(new RopeScaling("linear", 2.0), c.RopeScaling);
        Assert.Equal([7, 8], c.EosTokenIds);
        var d = LlamaConfig.FromJson(With("\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":1000.0}"));
        Assert.Equal(1000.0, d.RopeTheta);
        Assert.Null(d.RopeScaling);
    }

    [Fact]
    public void Qwen2_sliding_window_only_when_enabled_for_all_layers()
    {
        string q = Base.Replace("\"llama\"", "\"qwen2\"").Replace("LlamaForCausalLM", "Qwen2ForCausalLM");
        string With2(string e) => q.TrimEnd().TrimEnd('}') + "," + e + "}";
        Assert.Null(LlamaConfig.FromJson(With2("\"sliding_window\":64,\"use_sliding_window\":false")).SlidingWindow);
        Assert.Equal(64, LlamaConfig.FromJson(With2("\"sliding_window\":64,\"use_sliding_window\":true,\"max_window_layers\":0")).SlidingWindow);
        var e = Assert.Throws<InvalidDataException>(() => LlamaConfig.FromJson(With2("\"sliding_window\":64,\"use_sliding_window\":true,\"max_window_layers\":10")));
        Assert.Contains("max_window_layers", e.Message);
    }

    [Theory]
    [MemberData(nameof(GoldenFixture.ModelCases), MemberType = typeof(GoldenFixture))]
    public void Write_then_read_gives_the_same_config(string name)
    {
        var c = LlamaConfig.Load(GoldenFixture.Dir(name));
        var back = LlamaConfig.FromJson(c.ToJson());
        Assert.Equal(c with { EosTokenIds = [] }, back with { EosTokenIds = [] });
        Assert.Equal(c.EosTokenIds, back.EosTokenIds);
    }

    // transformers' LlamaConfig has no sliding_window: a llama config with a window was written without it, so the
    // saved model attended to the whole context while the trained one slid. Now the write refuses, naming the key.
    [Fact]
    public void A_sliding_window_that_config_json_cannot_hold_is_refused_not_dropped()
    {
        var llama = LlamaConfig.FromJson(Base) with { SlidingWindow = 64 };
        var e = Assert.Throws<InvalidDataException>(() => llama.ToJson());
        Assert.Contains("sliding_window=64", e.Message);
        Assert.Contains("model_type llama", e.Message);
        var dir = Directory.CreateTempSubdirectory("cfg-sw").FullName;
        try
        {
            Assert.Throws<InvalidDataException>(() => llama.Save(dir));
            Assert.False(File.Exists(Path.Combine(dir, "config.json")));   // nothing lossy on disk
        }
        finally { Directory.Delete(dir, true); }
        // q/k/v-only biases are qwen2's: on llama they would be lost the same way.
        Assert.Contains("q/k/v biases", Assert.Throws<InvalidDataException>(() => (LlamaConfig.FromJson(Base) with { QkvBias = true }).ToJson()).Message);
    }

    [Theory]
    [InlineData("mistral", "MistralForCausalLM")]
    [InlineData("qwen2", "Qwen2ForCausalLM")]
    public void A_sliding_window_round_trips_where_transformers_has_one(string type, string arch)
    {
        var c = LlamaConfig.FromJson(Base.Replace("\"llama\"", $"\"{type}\"").Replace("LlamaForCausalLM", arch)) with { SlidingWindow = 64, QkvBias = type == "qwen2" };
        var json = System.Text.Json.Nodes.JsonNode.Parse(c.ToJson())!;
        Assert.Equal(64, json["sliding_window"]!.GetValue<int>());
        if (type == "qwen2") Assert.True(json["use_sliding_window"]!.GetValue<bool>());
        Assert.Equal(64, LlamaConfig.FromJson(c.ToJson()).SlidingWindow);
    }
}
