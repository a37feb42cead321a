using System.Globalization;

namespace InstructTune.Training.Config;

/// <summary>
/// Declares a config key on a property of a config record: its one-line description and, for numbers, its
/// allowed range. The binder refuses a value outside the range naming key, value and range; `itune config schema`
/// prints the description, type, default and range from here, so the documentation cannot drift from the code.
/// Every settable property of a config record carries one (a test walks them all and checks each is read).
/// Range bounds are inclusive unless <see cref="MinExclusive"/> / <see cref="MaxExclusive"/> say otherwise;
/// for lists and maps of numbers the range applies to every element.
/// </summary>
[AttributeUsage(AttributeTargets.Property, Inherited = false)]
public sealed class ConfigKeyAttribute(string description) : Attribute
{
    public string Description { get; } = description;
    public double Min { get; set; } = double.NegativeInfinity;
    public double Max { get; set; } = double.PositiveInfinity;
    public bool MinExclusive { get; set; }
    public bool MaxExclusive { get; set; }

    public bool HasRange => !double.IsNegativeInfinity(Min) || !double.IsPositiveInfinity(Max);

    public bool Allows(double value) =>
        !double.IsNaN(value)
        && (MinExclusive ? value > Min : value >= Min)
        && (MaxExclusive ? value < Max : value <= Max);

    /// <summary>"[0, 1)", "≥ 0", "> 0", "≤ 8"; empty when unbounded.</summary>
    public string RangeText
    {
        get
        {
            var inv = CultureInfo.InvariantCulture;
            bool lo = !double.IsNegativeInfinity(Min), hi = !double.IsPositiveInfinity(Max);
            if (lo && hi) return $"{(MinExclusive ? "(" : "[")}{Min.ToString("R", inv)}, {Max.ToString("R", inv)}{(MaxExclusive ? ")" : "]")}";
            if (lo) return $"{(MinExclusive ? ">" : "≥")} {Min.ToString("R", inv)}";
            if (hi) return $"{(MaxExclusive ? "<" : "≤")} {Max.ToString("R", inv)}";
            return "";
        }
    }
}
