using System.Globalization;

namespace InstructTune.Data.TaskSuite;

/// <summary>
/// The built-in families: 30 in 6 clusters (string, counting, arithmetic, formatting, extraction, classification),
/// each with 4 phrasings (the 4th held out). Five families are held out whole. Inputs are drawn from small closed
/// word lists so a small model trained for minutes can learn the easy core.
/// </summary>
public static class TaskFamilies
{
    public const int TrainedPhrasings = 3;

    internal static readonly string[] Words =
    [
        "apple", "river", "stone", "cloud", "tiger", "lemon", "house", "green", "music", "table", "chair", "bread",
        "light", "water", "plant", "horse", "night", "smile", "train", "ocean", "cat", "dog", "sun", "map", "cup",
        "pen", "box", "hat", "car", "bus", "tree", "bird", "fish", "book", "door", "moon", "star", "rain", "snow",
        "wind", "fire", "leaf", "rock", "road", "ship", "milk", "cake", "sand", "king", "frog", "garden", "planet",
        "window", "yellow", "silver", "basket", "candle", "dragon", "forest", "pencil", "rocket", "winter", "castle",
    ];

    internal static readonly string[] Names = ["Anna", "Ben", "Clara", "David", "Emma", "Felix", "Grace", "Hugo", "Iris", "Jack"];
    internal static readonly string[] Positive = ["good", "great", "happy", "lovely", "wonderful", "excellent", "fun", "nice"];
    internal static readonly string[] Negative = ["bad", "sad", "terrible", "awful", "boring", "poor", "ugly", "horrible"];
    internal static readonly string[] Animals = ["cat", "dog", "horse", "tiger", "bird", "fish", "frog", "lion", "mouse", "sheep"];
    internal static readonly string[] Fruits = ["apple", "lemon", "banana", "cherry", "grape", "mango", "peach", "pear", "plum", "melon"];
    internal static readonly string[] Palindromes = ["level", "radar", "civic", "kayak", "refer", "noon", "madam", "rotor", "stats", "wow"];

    private static string Pick(Random r, string[] from) => from[r.Next(from.Length)];
    private static string Word(Random r) => Pick(r, Words);
    private static string Sentence(Random r) => string.Join(" ", Enumerable.Range(0, r.Next(3, 7)).Select(_ => Word(r)));
    private static string NumberList(Random r) => string.Join(", ", Enumerable.Range(0, r.Next(3, 6)).Select(_ => r.Next(1, 30)));
    private static int[] Numbers(string s) => s.Split(',', StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
    private static string[] SplitWords(string s) => s.Split(' ', StringSplitOptions.RemoveEmptyEntries);
    private static string Str(int n) => n.ToString(CultureInfo.InvariantCulture);

    private static (int A, int B) Pair(string s)
    {
        var parts = s.Split(" and ");
        return (int.Parse(parts[0]), int.Parse(parts[1]));
    }

    private static string PairOf(Random r, int max) => $"{r.Next(1, max)} and {r.Next(1, max)}";

    public static IReadOnlyList<TaskFamily> All { get; } =
    [
        // ---- string transformation
        new("reverse_word", "string", ValueKind.Word, ValueKind.Word,
            ["Reverse the word.", "Write the word backwards.", "Spell the word in reverse order.", "Give the letters of the word from last to first."],
            Word, s => new string(s.Reverse().ToArray())),
        new("uppercase", "string", ValueKind.Word, ValueKind.Word,
            ["Write the word in uppercase.", "Convert the word to capital letters.", "Make every letter of the word uppercase.", "Rewrite the word using only capital letters."],
            Word, s => s.ToUpperInvariant()),
        new("lowercase", "string", ValueKind.Word, ValueKind.Word,
            ["Write the word in lowercase.", "Convert the word to small letters.", "Make every letter of the word lowercase.", "Rewrite the word using only small letters."],
            r => Word(r).ToUpperInvariant(), s => s.ToLowerInvariant()),
        new("first_letter", "string", ValueKind.Word, ValueKind.Word,
            ["Give the first letter of the word.", "Write only the first letter of the word.", "Return the letter the word starts with.", "Name the initial letter of the word."],
            Word, s => s[..1]),
        new("last_letter", "string", ValueKind.Word, ValueKind.Word,
            ["Give the last letter of the word.", "Write only the last letter of the word.", "Return the letter the word ends with.", "Name the final letter of the word."],
            Word, s => s[^1..], HeldOut: true),
        new("double_word", "string", ValueKind.Word, ValueKind.Sentence,
            ["Repeat the word twice.", "Write the word two times.", "Say the word twice, separated by a space.", "Output the word, then the word again."],
            Word, s => s + " " + s),
        new("sort_letters", "string", ValueKind.Word, ValueKind.Word,
            ["Sort the letters of the word alphabetically.", "Put the letters of the word in alphabetical order.", "Arrange the letters of the word from a to z.", "Rewrite the word with its letters sorted."],
            Word, s => new string(s.Order().ToArray())),

        // ---- counting
        new("count_letters", "counting", ValueKind.Word, ValueKind.Number,
            ["Count the letters in the word.", "Say how many letters the word has.", "Give the number of letters in the word.", "Tell me the length of the word in letters."],
            Word, s => Str(s.Length)),
        new("count_words", "counting", ValueKind.Sentence, ValueKind.Number,
            ["Count the words in the sentence.", "Say how many words the sentence has.", "Give the number of words in the sentence.", "Tell me how many words there are."],
            Sentence, s => Str(SplitWords(s).Length)),
        new("count_vowels", "counting", ValueKind.Word, ValueKind.Number,
            ["Count the vowels in the word.", "Say how many vowels the word has.", "Give the number of vowels in the word.", "Tell me how many of the letters are vowels."],
            Word, s => Str(s.Count(c => "aeiou".Contains(c))), HeldOut: true),
        new("count_items", "counting", ValueKind.ItemList, ValueKind.Number,
            ["Count the items in the list.", "Say how many items the list has.", "Give the number of items in the list.", "Tell me how many things are listed."],
            r => string.Join(", ", Enumerable.Range(0, r.Next(2, 7)).Select(_ => Word(r))), s => Str(s.Split(", ").Length)),

        // ---- arithmetic
        new("add", "arithmetic", ValueKind.NumberPair, ValueKind.Number,
            ["Add the two numbers.", "Give the sum of the two numbers.", "Compute the total of the two numbers.", "Work out what the two numbers make together."],
            r => PairOf(r, 50), s => { var (a, b) = Pair(s); return Str(a + b); }),
        new("subtract", "arithmetic", ValueKind.NumberPair, ValueKind.Number,
            ["Subtract the second number from the first.", "Give the first number minus the second.", "Compute the difference of the first and the second number.", "Take the second number away from the first."],
            r => PairOf(r, 50), s => { var (a, b) = Pair(s); return Str(a - b); }),
        new("multiply", "arithmetic", ValueKind.NumberPair, ValueKind.Number,
            ["Multiply the two numbers.", "Give the product of the two numbers.", "Compute the two numbers multiplied together.", "Work out the first number times the second."],
            r => PairOf(r, 13), s => { var (a, b) = Pair(s); return Str(a * b); }),
        new("max_of_list", "arithmetic", ValueKind.NumberList, ValueKind.Number,
            ["Give the largest number in the list.", "Find the maximum of the numbers.", "Return the biggest number.", "Say which number in the list is highest."],
            NumberList, s => Str(Numbers(s).Max())),
        new("min_of_list", "arithmetic", ValueKind.NumberList, ValueKind.Number,
            ["Give the smallest number in the list.", "Find the minimum of the numbers.", "Return the least number.", "Say which number in the list is lowest."],
            NumberList, s => Str(Numbers(s).Min()), HeldOut: true),
        new("successor", "arithmetic", ValueKind.Number, ValueKind.Number,
            ["Add one to the number.", "Give the next number.", "Write the number that comes after it.", "Increase the number by one."],
            r => Str(r.Next(0, 100)), s => Str(int.Parse(s) + 1)),
        new("sum_of_list", "arithmetic", ValueKind.NumberList, ValueKind.Number,
            ["Add up the numbers in the list.", "Give the sum of all the numbers.", "Compute the total of the list.", "Work out what the listed numbers add up to."],
            NumberList, s => Str(Numbers(s).Sum())),

        // ---- formatting
        new("to_json", "formatting", ValueKind.KeyValues, ValueKind.Label,
            ["Write the name and age as a JSON object.", "Format the details as JSON.", "Turn the name and age into a JSON object with keys name and age.", "Give the details as compact JSON."],
            r => $"name {Pick(r, Names)}, age {r.Next(2, 90)}",
            s => { var parts = s.Split(", "); return $"{{\"name\": \"{parts[0][5..]}\", \"age\": {parts[1][4..]}}}"; }),
        new("bullets", "formatting", ValueKind.ItemList, ValueKind.Label,
            ["Write the items as a bulleted list.", "Format the list with one bullet per item.", "Put each item on its own line starting with a dash.", "Turn the items into bullet points."],
            r => string.Join(", ", Enumerable.Range(0, r.Next(2, 5)).Select(_ => Word(r))), s => string.Join("\n", s.Split(", ").Select(x => "- " + x))),
        new("title_case", "formatting", ValueKind.Sentence, ValueKind.Sentence,
            ["Write the sentence in title case.", "Capitalize the first letter of every word.", "Start each word with a capital letter.", "Convert the text to title case."],
            Sentence, s => string.Join(" ", SplitWords(s).Select(w => char.ToUpperInvariant(w[0]) + w[1..]))),
        new("join_with_dashes", "formatting", ValueKind.Sentence, ValueKind.Word,
            ["Join the words with dashes.", "Connect the words using hyphens instead of spaces.", "Replace every space with a dash.", "Write the words linked by dashes."],
            Sentence, s => string.Join("-", SplitWords(s)), HeldOut: true),

        // ---- extraction
        new("first_number", "extraction", ValueKind.Sentence, ValueKind.Number,
            ["Extract the first number in the text.", "Give the first number that appears.", "Return the earliest number in the sentence.", "Find the first number mentioned."],
            r => $"{Pick(r, Names)} has {r.Next(1, 20)} {Word(r)}s and {r.Next(1, 20)} {Word(r)}s",
            s => SplitWords(s).First(w => w.All(char.IsDigit))),
        new("last_word", "extraction", ValueKind.Sentence, ValueKind.Word,
            ["Give the last word of the sentence.", "Return the final word.", "Write only the word at the end.", "Extract the last word."],
            Sentence, s => SplitWords(s)[^1]),
        new("first_word", "extraction", ValueKind.Sentence, ValueKind.Word,
            ["Give the first word of the sentence.", "Return the opening word.", "Write only the word at the start.", "Extract the first word."],
            Sentence, s => SplitWords(s)[0]),
        new("find_name", "extraction", ValueKind.Sentence, ValueKind.Word,
            ["Extract the person's name.", "Give the name of the person in the sentence.", "Return the name that appears in the text.", "Find who is mentioned by name."],
            r => $"the {Word(r)} was given to {Pick(r, Names)} near the {Word(r)}", s => SplitWords(s).First(w => char.IsUpper(w[0]))),

        // ---- classification
        new("sentiment", "classification", ValueKind.Sentence, ValueKind.Label,
            ["Classify the sentiment as positive or negative.", "Say whether the sentence is positive or negative.", "Label the feeling of the text as positive or negative.", "Decide if the review is positive or negative."],
            r => r.Next(2) == 0 ? $"the {Word(r)} was {Pick(r, Positive)}" : $"the {Word(r)} was {Pick(r, Negative)}",
            s => Positive.Contains(SplitWords(s)[^1]) ? "positive" : "negative"),
        new("even_odd", "classification", ValueKind.Number, ValueKind.Label,
            ["Say whether the number is even or odd.", "Classify the number as even or odd.", "Answer even or odd for the number.", "Tell me if the number is even or odd."],
            r => Str(r.Next(0, 100)), s => int.Parse(s) % 2 == 0 ? "even" : "odd"),
        new("animal_or_fruit", "classification", ValueKind.Word, ValueKind.Label,
            ["Say whether the word is an animal or a fruit.", "Classify the word as animal or fruit.", "Answer animal or fruit.", "Tell me if the word names an animal or a fruit."],
            r => r.Next(2) == 0 ? Pick(r, Animals) : Pick(r, Fruits), s => Animals.Contains(s) ? "animal" : "fruit"),
        new("is_palindrome", "classification", ValueKind.Word, ValueKind.Label,
            ["Say yes if the word is a palindrome, otherwise no.", "Answer yes or no: does the word read the same backwards?", "Is the word a palindrome? Answer yes or no.", "Tell me yes or no: is the word spelled the same in reverse?"],
            r => r.Next(2) == 0 ? Pick(r, Palindromes) : Word(r), s => s.SequenceEqual(s.Reverse()) ? "yes" : "no", HeldOut: true),
    ];

    /// <summary>The condition used by conditional (level 1) tasks for an input kind, or null when none is defined.</summary>
    internal static (string Text, Func<string, bool> Holds)? Condition(ValueKind kind) => kind switch
    {
        ValueKind.Word => ("the word has more than 4 letters", s => s.Length > 4),
        ValueKind.Sentence => ("the text has more than 4 words", s => SplitWords(s).Length > 4),
        ValueKind.NumberList => ("the list has more than 3 numbers", s => Numbers(s).Length > 3),
        ValueKind.NumberPair => ("the first number is larger than the second", s => Pair(s).A > Pair(s).B),
        ValueKind.Number => ("the number is larger than 50", s => int.Parse(s) > 50),
        ValueKind.ItemList => ("there are more than 3 items", s => s.Split(", ").Length > 3),
        _ => null,
    };

    /// <summary>Families that accept any value of their input kind, so they can take another family's answer.</summary>
    private static readonly HashSet<string> GenericInput =
    [
        "reverse_word", "uppercase", "first_letter", "sort_letters", "double_word", "count_letters", "successor",
        "even_odd", "title_case", "count_words", "last_word", "first_word",
    ];

    /// <summary>Whether "if (condition on the input) a, otherwise b" is well defined: both accept a's inputs.</summary>
    internal static bool CanCondition(TaskFamily a, TaskFamily b) =>
        a != b && a.In == b.In && Condition(a.In) != null && ConditionalInput.Contains(a.Name) && ConditionalInput.Contains(b.Name);

    private static readonly HashSet<string> ConditionalInput =
        [.. GenericInput, "add", "subtract", "multiply", "max_of_list", "sum_of_list", "count_items", "bullets"];

    /// <summary>Whether family b can take family a's answer as its input (a multi-step composition a → b).</summary>
    internal static bool Chains(TaskFamily a, TaskFamily b) => a != b && a.Out == b.In && GenericInput.Contains(b.Name);
}
