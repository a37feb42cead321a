// Sampling and stopping settings for generation, with Hugging Face meanings.
namespace InstructTune.Generation;

public sealed record GenerationOptions
{
    public int MaxNewTokens { get; init; } = 64;
    /// <summary>0 = greedy (argmax); otherwise logits are divided by T before sampling.</summary>
    public double Temperature { get; init; } = 0;
    /// <summary>Keep the K most likely tokens (0 = off).</summary>
    public int TopK { get; init; }
    /// <summary>Keep the smallest set of most likely tokens whose probability reaches P (1 = off).</summary>
    public double TopP { get; init; } = 1.0;
    /// <summary>HF repetition penalty: seen tokens' logits divided by it when positive, multiplied when negative (1 = off).</summary>
    public double RepetitionPenalty { get; init; } = 1.0;
    /// <summary>OpenAI presence penalty: subtracted once from the logit of every token already generated (0 = off).</summary>
    public double PresencePenalty { get; init; }
    /// <summary>OpenAI frequency penalty: subtracted from a token's logit once per time it was generated (0 = off).</summary>
    public double FrequencyPenalty { get; init; }
    /// <summary>OpenAI logit_bias: added to the logit of each token id before any penalty (null = none).</summary>
    public IReadOnlyDictionary<int, float>? LogitBias { get; init; }
    public int Seed { get; init; }
    public IReadOnlyList<int> StopTokenIds { get; init; } = [];
    /// <summary>Nothing ends a sequence before this many new tokens (vLLM's min_tokens): the stop tokens cannot be chosen
    /// (HF's min_new_tokens) and stop strings are not checked; for base models that would end at once.</summary>
    public int MinNewTokens { get; init; }
    /// <summary>Stop when the decoded continuation contains one of these (needs <see cref="Decode"/>).</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];
    public Func<IReadOnlyList<int>, string>? Decode { get; init; }
    /// <summary>false recomputes the whole sequence every step (the reference the cache is tested against).</summary>
    public bool UseCache { get; init; } = true;
    /// <summary>Tokens it refuses are never chosen (the sampler redraws without them), e.g. JSON-only output.</summary>
    public ITokenConstraint? Constraint { get; init; }
    /// <summary>Called with (sequence index, token id) as each token is chosen.</summary>
    public Action<int, int>? OnToken { get; init; }

    public void Validate()
    {
        if (MaxNewTokens < 0) throw new ArgumentOutOfRangeException(nameof(MaxNewTokens), "max new tokens must be ≥ 0");
        if (MinNewTokens < 0) throw new ArgumentOutOfRangeException(nameof(MinNewTokens), "min new tokens must be ≥ 0");
        if (Temperature < 0 || double.IsNaN(Temperature)) throw new ArgumentOutOfRangeException(nameof(Temperature), "temperature must be ≥ 0");
        if (TopK < 0) throw new ArgumentOutOfRangeException(nameof(TopK), "top-k must be ≥ 0");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentOutOfRangeException(nameof(TopP), "top-p must be in (0, 1]");
        if (!(RepetitionPenalty > 0)) throw new ArgumentOutOfRangeException(nameof(RepetitionPenalty), "repetition penalty must be > 0");
        if (!double.IsFinite(PresencePenalty)) throw new ArgumentOutOfRangeException(nameof(PresencePenalty), "presence penalty must be finite");
        if (!double.IsFinite(FrequencyPenalty)) throw new ArgumentOutOfRangeException(nameof(FrequencyPenalty), "frequency penalty must be finite");
        if (LogitBias != null && LogitBias.Values.Any(b => !float.IsFinite(b))) throw new ArgumentOutOfRangeException(nameof(LogitBias), "logit biases must be finite");
        if (StopStrings.Count > 0 && Decode == null) throw new ArgumentException("stop strings need a tokenizer to decode with");
    }
}
